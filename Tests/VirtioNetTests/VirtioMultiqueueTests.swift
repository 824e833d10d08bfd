import NICCore
import NICHarness
import Testing

@testable import VirtioNet

func udpFlowFrame(to mac: MACAddress, sourcePort: UInt16) -> [UInt8] {
    let payload = [UInt8](repeating: 0x42, count: 32)
    let length = 8 + payload.count
    return mac.bytes + peerMAC.bytes + [0x08, 0x00]
        + ipv4Header(payloadLength: length, protocolNumber: 17, id: 1).map { $0 }
        + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0x00, 0x35, 0, UInt8(length), 0, 0] + payload
}

@Suite("virtio-net multiqueue")
struct VirtioMultiqueueTests {
    /// Four pairs, MQ negotiated, every receive queue stocked.
    func start(pairs: Int = 4) throws -> (VirtioBench, [any DriverRing], [any DriverRing], ControlDriver) {
        let bench = try VirtioBench(pairs: pairs)
        bench.enableMSIX()
        #expect(bench.negotiateModern([.version1, .mac, .controlQueue, .multiqueue, .controlReceive]))
        var rx: [any DriverRing] = []
        var tx: [any DriverRing] = []
        for pair in 0..<pairs {
            rx.append(bench.setupModernQueue(2 * pair, size: 64, vector: UInt16(2 * pair)))
            tx.append(bench.setupModernQueue(2 * pair + 1, size: 64, vector: UInt16(2 * pair + 1)))
        }
        let control = ControlDriver(
            bench: bench, ring: bench.setupModernQueue(2 * pairs, size: 16), queueIndex: 2 * pairs)
        bench.driverOK()
        for ring in rx { for _ in 0..<32 { ring.add([(bench.allocate(2048), 2048, true)]) } }
        return (bench, rx, tx, control)
    }

    @Test func onlyPairZeroUntilThePairsAreSet() throws {
        let (bench, rx, _, _) = try start()
        for port in 0..<16 { bench.receive(udpFlowFrame(to: bench.mac, sourcePort: UInt16(1000 + port))) }
        #expect(rx[0].takeUsed().count == 16)
        for ring in rx.dropFirst() { #expect(ring.takeUsed().isEmpty) }
    }

    @Test func flowsSpreadOverThePairsInUseAndStayPut() throws {
        let (bench, rx, _, control) = try start()
        #expect(control.send(4, 0, [4, 0]) == 0)
        var pairOfFlow: [UInt16: Int] = [:]
        for port in 0..<24 {
            bench.receive(udpFlowFrame(to: bench.mac, sourcePort: UInt16(2000 + port)))
            for (pair, ring) in rx.enumerated() where !ring.takeUsed().isEmpty {
                pairOfFlow[UInt16(2000 + port)] = pair
            }
        }
        #expect(pairOfFlow.count == 24)
        #expect(Set(pairOfFlow.values).count == 4, "every pair gets flows: \(pairOfFlow)")
        for (port, pair) in pairOfFlow.prefix(4) {
            for _ in 0..<3 {
                bench.receive(udpFlowFrame(to: bench.mac, sourcePort: port))
                #expect(rx[pair].takeUsed().count == 1, "flow \(port) stays on pair \(pair)")
            }
        }
        #expect(bench.msix.total[0] != nil && bench.msix.total[6] != nil, "per-queue vectors")
    }

    @Test func everyPairTransmits() throws {
        let (bench, _, tx, _) = try start()
        for (pair, ring) in tx.enumerated() {
            let buffer = bench.allocate(76)
            bench.store(netHeader() + makeFrame(to: .broadcast, seed: UInt8(pair)), at: buffer)
            ring.add([(buffer, 76, false)])
            bench.notifyModern(2 * pair + 1)
            #expect(ring.takeUsed().count == 1)
        }
        #expect(bench.sentFrames().count == 4)
        #expect(bench.card.pairs.map { $0.statistics.transmittedFrames } == [1, 1, 1, 1])
    }

    @Test func pairsCanBeServicedConcurrently() async throws {
        let (bench, _, tx, _) = try start()
        for (pair, ring) in tx.enumerated() {
            (ring as! SplitDriverRing).setNoInterrupt(true)
            for i in 0..<48 {
                let buffer = bench.allocate(76, alignment: 16)
                bench.store(netHeader() + makeFrame(to: .broadcast, seed: UInt8(i)), at: buffer)
                ring.add([(buffer, 76, false)])
            }
            _ = pair
        }
        nonisolated(unsafe) let card = bench.card
        await withTaskGroup(of: Void.self) { group in
            for pair in 0..<4 {
                group.addTask {
                    card.pairs[pair].transmitPending = true
                    card.servicePair(pair)
                }
            }
        }
        #expect(bench.recorder.count == 4 * 48)
        for ring in tx { #expect(ring.takeUsed().count == 48) }
    }

    @Test func withoutMQTheControlQueueIsQueueTwo() throws {
        let bench = try VirtioBench(pairs: 4)
        #expect(bench.negotiateModern([.version1, .mac, .controlQueue, .controlReceive]))
        _ = bench.setupModernQueue(0, size: 64)
        _ = bench.setupModernQueue(1, size: 64)
        let ring = bench.setupModernQueue(2, size: 16)
        bench.driverOK()
        let control = ControlDriver(bench: bench, ring: ring, queueIndex: 2)
        #expect(control.send(0, 0, [0]) == 0)
        bench.notifyModern(3)
        #expect(bench.counter("notify_invalid_queue") == 1)
        bench.modernWrite(0x16, 2, 5)
        #expect(bench.modernRead(0x18, 2) == 0, "queue 5 does not exist without MQ")
    }
}
