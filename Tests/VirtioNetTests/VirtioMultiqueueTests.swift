import Glibc
import NICCore
import NICHarness
import Synchronization
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
    func start(pairs: Int = 4) throws -> (VirtioBench, [VirtioDriverQueue], [VirtioDriverQueue], ControlDriver) {
        let bench = try VirtioBench(pairs: pairs)
        bench.enableMSIX()
        #expect(bench.negotiateModern([.version1, .mac, .controlQueue, .multiqueue, .controlReceive]))
        var rx: [VirtioDriverQueue] = []
        var tx: [VirtioDriverQueue] = []
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
        #expect(rx[0].used().count == 16)
        for ring in rx.dropFirst() { #expect(ring.used().isEmpty) }
    }

    @Test func flowsSpreadOverThePairsInUseAndStayPut() throws {
        let (bench, rx, _, control) = try start()
        #expect(control.send(4, 0, [4, 0]) == 0)
        var pairOfFlow: [UInt16: Int] = [:]
        for port in 0..<24 {
            bench.receive(udpFlowFrame(to: bench.mac, sourcePort: UInt16(2000 + port)))
            for (pair, ring) in rx.enumerated() where !ring.used().isEmpty {
                pairOfFlow[UInt16(2000 + port)] = pair
            }
        }
        #expect(pairOfFlow.count == 24)
        #expect(Set(pairOfFlow.values).count == 4, "every pair gets flows: \(pairOfFlow)")
        for (port, pair) in pairOfFlow.prefix(4) {
            for _ in 0..<3 {
                bench.receive(udpFlowFrame(to: bench.mac, sourcePort: port))
                #expect(rx[pair].used().count == 1, "flow \(port) stays on pair \(pair)")
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
            #expect(ring.used().count == 1)
        }
        #expect(bench.sentFrames().count == 4)
        #expect(bench.card.pairs.map { $0.statistics[.transmittedFrames] } == [1, 1, 1, 1])
    }

    @Test func pairsCanBeServicedConcurrently() async throws {
        let (bench, _, tx, _) = try start()
        for (pair, ring) in tx.enumerated() {
            try ring.suppressInterrupts(true)
            for i in 0..<48 {
                let buffer = bench.allocate(76, alignment: 16)
                bench.store(netHeader() + makeFrame(to: .broadcast, seed: UInt8(i)), at: buffer)
                ring.add([(buffer, 76, false)])
            }
            _ = pair
        }
        for pair in bench.card.pairs { pair.transmitPending = true }
        // The public, Sendable handles: no unsafe escape is needed to service pairs on tasks of their own.
        let handles = bench.card.queuePairHandles
        #expect(handles.map(\.index) == [0, 1, 2, 3])
        await withTaskGroup(of: Void.self) { group in
            for handle in handles { group.addTask { handle.service() } }
        }
        #expect(handles.map { $0.statistics[.transmittedFrames] } == [48, 48, 48, 48])
        #expect(bench.recorder.count == 4 * 48)
        for ring in tx { #expect(ring.used().count == 48) }
    }

    /// Four pairs transmit 2000 frames each, every pair on its own thread driven by its own doorbells at the same
    /// time: every frame reaches the attachment exactly once, every chain comes back used, the counters add up.
    @Test func fourPairsTransmitOnFourThreadsAtOnce() throws {
        let (bench, _, tx, _) = try start()
        let sink = SequenceSink(pairs: 4, framesPerPair: Self.framesPerPair)
        bench.card.port.attach(sink)
        var buffers: [[UInt64]] = []
        for ring in tx {
            try ring.suppressInterrupts(true)
            buffers.append((0..<Self.inFlight).map { _ in bench.allocate(76, alignment: 16) })
        }
        nonisolated(unsafe) let shared = (bench: bench, rings: tx, buffers: buffers)
        let completed = Mutex<[Int]>([0, 0, 0, 0])
        runOnThreads(4) { pair in
            let (bench, ring, buffers) = (shared.bench, shared.rings[pair], shared.buffers[pair])
            var sent = 0
            var done = 0
            var rounds = 0
            while done < Self.framesPerPair, rounds < 100_000 {
                rounds += 1
                while sent - done < Self.inFlight, sent < Self.framesPerPair {
                    let buffer = buffers[sent % Self.inFlight]
                    bench.store(netHeader() + SequenceSink.frame(pair: pair, sequence: sent), at: buffer)
                    ring.add([(buffer, 76, false)])
                    sent += 1
                }
                bench.notifyModern(2 * pair + 1)
                done += ring.used().count
            }
            completed.withLock { $0[pair] = done }
        }
        #expect(completed.withLock { $0 } == [Int](repeating: Self.framesPerPair, count: 4))
        #expect(sink.duplicates == 0)
        #expect(sink.missing == 0)
        #expect(sink.strangers == 0)
        #expect(bench.card.port.transmitted == UInt64(4 * Self.framesPerPair))
        for pair in bench.card.pairs {
            #expect(pair.statistics[.transmittedFrames] == UInt64(Self.framesPerPair))
            #expect(pair.statistics[.transmitChains] == UInt64(Self.framesPerPair))
        }
        #expect(bench.counter("tx_frames") == UInt64(4 * Self.framesPerPair))
    }

    static let framesPerPair = 2000
    static let inFlight = 32

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

/// An attachment that takes concurrent transmits and checks that every numbered frame arrives exactly once.
final class SequenceSink: NetworkAttachment, @unchecked Sendable {
    private let seen: Mutex<(counts: [UInt8], strangers: Int)>
    private let framesPerPair: Int

    init(pairs: Int, framesPerPair: Int) {
        self.framesPerPair = framesPerPair
        seen = Mutex(([UInt8](repeating: 0, count: pairs * framesPerPair), 0))
    }

    /// A 64-byte broadcast frame carrying its pair and sequence number.
    static func frame(pair: Int, sequence: Int) -> [UInt8] {
        MACAddress.broadcast.bytes + peerMAC.bytes + [
            0x88, 0xB5, UInt8(pair), UInt8(sequence >> 8), UInt8(sequence & 0xFF),
        ]
            + [UInt8](repeating: 0x5A, count: 64 - 17)
    }

    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        let numbered = frame.count == 64 && frame[12] == 0x88 && frame[13] == 0xB5
        let pair = numbered ? Int(frame[14]) : -1
        let sequence = numbered ? Int(frame.load(bigEndian: UInt16.self, at: 15) ?? 0) : -1
        seen.withLock { seen in
            let slot = pair * framesPerPair + sequence
            guard pair >= 0, sequence >= 0, sequence < framesPerPair, slot < seen.counts.count else {
                seen.strangers += 1
                return
            }
            seen.counts[slot] &+= 1
        }
    }

    func didAttach(_ port: FramePort) { port.setCarrier(true) }

    var duplicates: Int { seen.withLock { $0.counts.filter { $0 > 1 }.count } }
    var missing: Int { seen.withLock { $0.counts.filter { $0 == 0 }.count } }
    var strangers: Int { seen.withLock { $0.strangers } }
}

/// Runs `body(0)` … `body(count - 1)` on `count` threads of their own at once and waits for all of them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        let box = Unmanaged.passRetained(Box { body(index) }).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, box)
        precondition(created == 0, "pthread_create failed")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
