import NICCore

/// The driver-script scenarios recorded as fixtures in `Fixtures/traces/`: each runs one card through a piece of a
/// Linux driver session with a ``TraceRecorder`` attached.
public struct Scenario: Sendable {
    /// The fixture's file name without extension, e.g. `am79c973-transmit`.
    public var name: String
    public var model: CardModel
    /// What the scenario shows, for the trace's first comment.
    public var summary: String
    let body: @Sendable (CardHarness) throws -> Void

    /// Runs the scenario on a fresh harness and returns the recorded trace.
    public func record() throws(HarnessError) -> Trace {
        let harness = try CardHarness(model: model)
        let recorder = TraceRecorder.attach(to: harness, title: summary)
        do {
            try body(harness)
        } catch let error as HarnessError {
            throw error
        } catch {
            throw HarnessError("\(name): \(error)")
        }
        return recorder.trace
    }

    /// Every scenario for every implemented card.
    public static var all: [Scenario] { CardModel.implemented.flatMap(scenarios(for:)) }

    /// The scenarios for `model`.
    public static func scenarios(for model: CardModel) -> [Scenario] {
        switch model {
        case .am79c970a, .am79c973: return pcnetScenarios(model)
        default: return []
        }
    }

    public static let peer = MACAddress("02:00:00:00:00:02")!

    private static func pcnetScenarios(_ model: CardModel) -> [Scenario] {
        func make(_ suffix: String, _ summary: String, _ body: @escaping @Sendable (PCNetDriver) throws -> Void)
            -> Scenario
        {
            Scenario(name: "\(model.rawValue)-\(suffix)", model: model, summary: summary) { harness in
                let driver = PCNetDriver(harness: harness)
                driver.enableDevice()
                _ = try driver.probe()
                try body(driver)
            }
        }
        var scenarios = [
            make("probe", "pcnet32 probe: WIO reset, CSR0 == 4, RAP check, chip ID, APROM, MII scan") { _ in },
            make("dwio", "switch to DWIO with a 32-bit RDP write, reset and identify through the DWIO ports") {
                driver in
                driver.switchToDoubleWordIO()
                driver.reset()
                _ = driver.readCSR(0)
                _ = driver.harness.read(bar: 0, offset: 0x14, width: 4)
                _ = driver.readCSR(88)
                _ = driver.harness.read(bar: 0, offset: 0x00, width: 4, comment: "APROM as a double word")
                _ = driver.harness.read(bar: 0, offset: 0x12, width: 2, comment: "word access in DWIO reads all-ones")
            },
        ]
        for style in [0, 2, 3] {
            scenarios.append(
                make("init-swstyle\(style)", "open with software style \(style): INIT, IDON, STRT, then close") {
                    driver in
                    try driver.open(style: style)
                    _ = driver.linkUp()
                    driver.close()
                })
        }
        scenarios += [
            make("transmit", "open, send a broadcast frame, take the TINT interrupt") { driver in
                try driver.open()
                try driver.transmit(broadcast(from: driver.harness.card.macAddress))
                _ = driver.harness.nextTransmitted()
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                _ = driver.harness.interruptLevel()
                driver.close()
            },
            make("receive", "open, receive a unicast frame, take the RINT interrupt and read it") { driver in
                try driver.open()
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 98))
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                _ = driver.harness.interruptLevel()
                driver.close()
            },
            make("miss", "open with no receive buffer owned: a frame is missed (MISS, CSR112 = 1)") { driver in
                try driver.open(receiveOwned: 0)
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 64))
                _ = driver.harness.interruptLevel()
                let cause = driver.readCSR(0)
                driver.writeCSR(0, cause & ~0x004F)
                _ = driver.harness.interruptLevel()
                driver.close()
            },
            make("loopback", "internal loopback (CSR15 LOOP|INTL): a frame sent to itself comes back") { driver in
                try driver.open(mode: 0x0044)
                let mac = driver.harness.card.macAddress
                try driver.transmit(unicast(to: mac, from: mac, length: 80))
                _ = driver.harness.transmittedCount()
                try driver.handleInterrupt()
                driver.close()
            },
            make("link", "cable unplugged and plugged back: the link check follows") { driver in
                try driver.open()
                _ = driver.linkUp()
                driver.harness.setLink(up: false)
                _ = driver.linkUp()
                driver.harness.setLink(up: true)
                _ = driver.linkUp()
                driver.close()
            },
        ]
        return scenarios
    }

    /// A 60-byte broadcast ARP-like frame from `source`.
    public static func broadcast(from source: MACAddress) -> [UInt8] {
        MACAddress.broadcast.bytes + source.bytes + [0x08, 0x06] + (0..<46).map { UInt8($0) }
    }

    /// A unicast IPv4-typed frame of `length` bytes.
    public static func unicast(to destination: MACAddress, from source: MACAddress = peer, length: Int) -> [UInt8] {
        destination.bytes + source.bytes + [0x08, 0x00]
            + (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0 * 7) }
    }
}
