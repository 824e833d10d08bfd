import Glibc
import NICCards
import NICCore
import NetBackend

/// The main job on an embedded default: one card of each implemented type, each driven by its Linux-like driver
/// script, all on one internal network; every step checked, as a table. The Intel cards (RCTL.LPE) and virtio-net
/// (mergeable receive buffers) open with jumbo frames on and exchange 9014-byte frames; the PCnet cards, like the real
/// chips, drop them.
public enum Demo {
    /// The outcome of one step for one card.
    public struct Outcome: Hashable, Sendable {
        public var passed: Bool
        public var detail: String
    }

    /// One row of the table: a step and each card's outcome, in card order.
    public struct Row: Hashable, Sendable {
        public var step: String
        public var outcomes: [Outcome]
    }

    /// The whole run.
    public struct Report: Sendable {
        public var cards: [CardModel]
        public var network: String
        public var rows: [Row]

        /// Whether every step worked for every card.
        public var passed: Bool { rows.allSatisfy { $0.outcomes.allSatisfy(\.passed) } }

        /// The report as a text table.
        public var table: String {
            let stepWidth = max(24, rows.map(\.step.count).max() ?? 0) + 2
            let widest = rows.flatMap(\.outcomes).map { $0.detail.count + 5 }.max() ?? 0
            let columnWidth = max(30, widest, cards.map(\.displayName.count).max() ?? 0) + 2
            func pad(_ text: String, _ width: Int) -> String {
                text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
            }
            var lines = [pad("step", stepWidth) + cards.map { pad($0.displayName, columnWidth) }.joined()]
            lines.append(String(repeating: "-", count: stepWidth + columnWidth * cards.count))
            for row in rows {
                lines.append(
                    pad(row.step, stepWidth)
                        + row.outcomes.map { pad(($0.passed ? "ok   " : "FAIL ") + $0.detail, columnWidth) }.joined())
            }
            return lines.joined(separator: "\n")
        }
    }

    /// A card under test: its harness and its driver.
    private final class Station {
        let harness: CardHarness
        let driver: any GuestDriver
        /// Whether the card opens with jumbo frames on.
        let jumbo: Bool
        var mac: MACAddress { harness.card.macAddress }
        init(_ harness: CardHarness, jumbo: Bool) throws(HarnessError) {
            self.harness = harness
            self.jumbo = jumbo && harness.model.supportsJumboFrames
            driver = try harness.model.driver(for: harness)
        }
    }

    /// Runs the demo with every implemented card on the internal network `network`.
    public static func run(models: [CardModel] = CardModel.implemented, network name: String = "intnet") -> Report {
        let network = InternalNetworkHub().network(named: name)
        return run(models: models, network: name, setupStep: "attach to intnet \"\(name)\"", jumbo: true) { _ in
            network
        }
    }

    /// Runs the demo with each card on the attachment `attachment` makes for its index; with `jumbo`, the cards that
    /// take jumbo frames open with MTU 9000 and exchange them. Attachments may deliver frames on threads of their own:
    /// each exchange waits (bounded) for the frame to arrive.
    static func run(
        models: [CardModel], network name: String, setupStep: String, jumbo: Bool,
        attachment: (Int) throws -> any NetworkAttachment
    ) -> Report {
        var stations: [Station] = []
        var rows: [Row] = []
        var setupRow = Row(step: setupStep, outcomes: [])
        for (index, model) in models.enumerated() {
            let mac = MACAddress(rawValue: 0x5254_0000_0000 | UInt64(index + 1))
            do {
                let station = try Station(try CardHarness(model: model, macAddress: mac), jumbo: jumbo)
                station.harness.card.port.attach(try attachment(index))
                station.harness.card.service()
                stations.append(station)
                setupRow.outcomes.append(Outcome(passed: station.harness.card.linkUp, detail: "\(mac)"))
            } catch {
                let message = (error as? HarnessError)?.message ?? "\(error)"
                return Report(
                    cards: models, network: name,
                    rows: [
                        Row(step: "create cards", outcomes: models.map { _ in Outcome(passed: false, detail: message) })
                    ])
            }
        }
        rows.append(setupRow)

        rows.append(
            step("probe", stations) { station in
                station.driver.enableDevice()
                let probe = try station.driver.identify()
                return Outcome(passed: probe.valid && probe.macAddress == station.mac, detail: probe.chipName)
            })
        rows.append(
            step(jumbo ? "open (jumbo on Intel, virtio)" : "open", stations) { station in
                try station.driver.start(jumbo: station.jumbo)
                return Outcome(passed: station.driver.linkUp(), detail: station.jumbo ? "link up, MTU 9000" : "link up")
            })
        rows.append(exchange("broadcast each way", stations) { sender, _ in Scenario.broadcast(from: sender.mac) })
        rows.append(
            exchange("unicast each way", stations) { sender, receiver in
                Scenario.unicast(to: receiver.mac, from: sender.mac, length: 128)
            })
        if let jumbo = jumboExchange(stations) { rows.append(jumbo) }
        rows.append(
            step("cable unplugged", stations) { station in
                station.harness.setLink(up: false)
                let down = !station.driver.linkUp()
                let sent = station.harness.card.port.transmitted
                _ = try station.driver.send(Scenario.broadcast(from: station.mac))
                try station.driver.serviceInterrupt()
                let held = station.harness.card.port.transmitted == sent
                return Outcome(passed: down && held, detail: "link down, nothing sent")
            })
        rows.append(
            step("cable plugged back", stations) { station in
                station.harness.setLink(up: true)
                return Outcome(passed: station.driver.linkUp(), detail: "link up")
            })
        rows.append(
            exchange("unicast after link up", stations) { sender, receiver in
                Scenario.unicast(to: receiver.mac, from: sender.mac, length: 64)
            })
        rows.append(
            step("stop", stations) { station in
                let missed = station.driver.stop()
                return Outcome(passed: missed == 0, detail: "missed \(missed)")
            })
        return Report(cards: models, network: name, rows: rows)
    }

    private static func step(_ name: String, _ stations: [Station], _ body: (Station) throws -> Outcome) -> Row {
        Row(
            step: name,
            outcomes: stations.map { station in
                do { return try body(station) } catch { return Outcome(passed: false, detail: "\(error)") }
            })
    }

    /// Each jumbo-capable card broadcasts a 9014-byte frame: every other jumbo-capable card receives it intact, and the
    /// cards without jumbo support drop it and count the drop. No row without two jumbo-capable cards.
    private static func jumboExchange(_ stations: [Station]) -> Row? {
        var outcomes = stations.map { station in
            Outcome(passed: !station.jumbo, detail: station.jumbo ? "sent nothing" : "nothing to drop")
        }
        let senders = stations.indices.filter { stations[$0].jumbo }
        guard senders.count > 1 else { return nil }
        var intact = [Int](repeating: 0, count: stations.count)
        var dropped = [UInt64](repeating: 0, count: stations.count)
        for index in senders {
            let sender = stations[index]
            let frame =
                MACAddress.broadcast.bytes + sender.mac.bytes + [0x88, 0xB5]
                + (0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ index) }
            let before = stations.map { ($0.driver.received.count, oversizeDrops($0)) }
            do {
                _ = try sender.driver.send(frame)
                try sender.driver.serviceInterrupt()
                let jumboReceivers = stations.indices.filter { $0 != index && stations[$0].jumbo }
                try deliver(to: stations, except: sender) {
                    jumboReceivers.allSatisfy { stations[$0].driver.received.count > before[$0].0 }
                }
                for (other, station) in stations.enumerated() where other != index {
                    let count = station.driver.received.count
                    if station.jumbo, count == before[other].0 + 1, station.driver.received.last == frame {
                        intact[other] += 1
                    }
                    if !station.jumbo, count == before[other].0 {
                        dropped[other] += oversizeDrops(station) &- before[other].1
                    }
                }
            } catch {
                continue
            }
        }
        for (index, station) in stations.enumerated() {
            if station.jumbo {
                let expected = senders.count - 1
                outcomes[index] = Outcome(
                    passed: intact[index] == expected, detail: "\(intact[index]) of \(expected) received intact")
            } else {
                outcomes[index] = Outcome(
                    passed: dropped[index] == UInt64(senders.count), detail: "dropped \(dropped[index]), counted")
            }
        }
        return Row(step: "9014-byte jumbo broadcast", outcomes: outcomes)
    }

    /// Lets every station but `sender` take what its attachment delivered, until `arrived` holds or three seconds have
    /// passed (an attachment with a thread of its own delivers a little later; an internal network at once).
    private static func deliver(to stations: [Station], except sender: Station, until arrived: () -> Bool) throws {
        for round in 0..<3000 {
            for station in stations where station !== sender {
                station.harness.card.service()
                try station.driver.serviceInterrupt()
            }
            if arrived() { return }
            if round > 0 { usleep(1000) }
        }
    }

    /// Receive drops for oversize frames, as the card counts them.
    private static func oversizeDrops(_ station: Station) -> UInt64 {
        station.harness.card.counters.filter { $0.name.hasPrefix("rx_") && $0.name.hasSuffix("oversize") }
            .reduce(0) { $0 &+ $1.value }
    }

    /// Each card sends one frame to the next card in the list (round robin); a card passes when its frame arrived
    /// intact at the receiver and it received the frame meant for it, and nothing else.
    private static func exchange(
        _ name: String, _ stations: [Station], frame: (Station, Station) -> [UInt8]
    ) -> Row {
        guard stations.count > 1 else {
            return Row(step: name, outcomes: stations.map { _ in Outcome(passed: false, detail: "needs two cards") })
        }
        var sentOK = [Bool](repeating: false, count: stations.count)
        var receivedOK = [Bool](repeating: false, count: stations.count)
        for (index, sender) in stations.enumerated() {
            let receiver = stations[(index + 1) % stations.count]
            let payload = frame(sender, receiver)
            let before = stations.map { $0.driver.received.count }
            let errorsBefore = sender.driver.transmitErrors
            do {
                _ = try sender.driver.send(payload)
                try sender.driver.serviceInterrupt()
                try deliver(to: stations, except: sender) {
                    receiver.driver.received.count > before[(index + 1) % stations.count]
                }
            } catch {
                continue
            }
            let broadcast = payload.prefix(6).allSatisfy { $0 == 0xFF }
            let receiverIndex = (index + 1) % stations.count
            sentOK[index] = sender.driver.transmitErrors == errorsBefore && receiver.driver.received.last == payload
            receivedOK[receiverIndex] = receiver.driver.received.count == before[receiverIndex] + 1
            for (other, station) in stations.enumerated() where other != index && other != receiverIndex {
                // Broadcasts reach everyone; unicasts reach only their destination.
                let expected = before[other] + (broadcast ? 1 : 0)
                if station.driver.received.count != expected { sentOK[index] = false }
            }
        }
        return Row(
            step: name,
            outcomes: stations.indices.map { i in
                Outcome(
                    passed: sentOK[i] && receivedOK[i],
                    detail: sentOK[i] && receivedOK[i]
                        ? "sent and received" : "sent \(sentOK[i]), received \(receivedOK[i])")
            })
    }
}
