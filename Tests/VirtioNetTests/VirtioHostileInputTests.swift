import NICCore
import NICHarness
import Testing

@testable import VirtioNet

/// Broken rings put the device in NEEDS_RESET with a config interrupt and a named counter; nothing traps and no DMA
/// leaves guest RAM.
@Suite("virtio-net hostile input")
struct VirtioHostileInputTests {
    func expectBroken(_ bench: VirtioBench, _ counter: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(bench.needsReset, "NEEDS_RESET", sourceLocation: sourceLocation)
        #expect(bench.counter(counter) == 1, "\(counter)", sourceLocation: sourceLocation)
        #expect(bench.counter("needs_reset") == 1, sourceLocation: sourceLocation)
        #expect(bench.modernRead(0x1000, 1) & 2 == 2, "config interrupt", sourceLocation: sourceLocation)
        #expect(bench.status & 0x40 != 0, sourceLocation: sourceLocation)
    }

    func split(_ features: VirtioFeatures = [.mac, .indirectDescriptors]) throws -> (VirtioBench, VirtioDriverQueue) {
        let bench = try VirtioBench()
        let rings = bench.startModern(features)
        return (bench, rings.tx)
    }

    @Test func descriptorLoop() throws {
        let (bench, tx) = try split()
        let buffer = bench.allocate(64)
        try tx.writeDescriptor(0, address: buffer, length: 64, flags: 1, next: 1)
        try tx.writeDescriptor(1, address: buffer, length: 64, flags: 1, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_chain_loop")
        #expect(bench.sentFrames().isEmpty)
    }

    @Test func selfLoopInAnIndirectTable() throws {
        let (bench, tx) = try split()
        let table = bench.allocate(32, alignment: 16)
        let buffer = bench.allocate(64)
        bench.store64(buffer, at: table)
        bench.store32(64, at: table + 8)
        bench.store16(1, at: table + 12)
        bench.store16(0, at: table + 14)
        try tx.writeDescriptor(0, address: table, length: 32, flags: 4, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_chain_loop")
    }

    @Test func nestedIndirectTable() throws {
        let (bench, tx) = try split()
        let inner = bench.allocate(16, alignment: 16)
        let outer = bench.allocate(16, alignment: 16)
        bench.store64(inner, at: outer)
        bench.store32(16, at: outer + 8)
        bench.store16(4, at: outer + 12)
        try tx.writeDescriptor(0, address: outer, length: 16, flags: 4, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_nested_indirect")
    }

    @Test(arguments: [UInt32(0), 24, 8])
    func indirectLengthZeroOrNotAMultipleOf16(_ length: UInt32) throws {
        let (bench, tx) = try split()
        try tx.writeDescriptor(0, address: bench.allocate(64), length: length, flags: 4, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_indirect_length")
    }

    @Test func indirectWithoutTheFeature() throws {
        let (bench, tx) = try split([.mac])
        try tx.writeDescriptor(0, address: bench.allocate(16), length: 16, flags: 4, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_unexpected_indirect")
    }

    @Test func headOutOfRange() throws {
        let (bench, tx) = try split()
        try tx.publish(64)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_head_out_of_range")
    }

    @Test func nextOutOfRange() throws {
        let (bench, tx) = try split()
        try tx.writeDescriptor(0, address: bench.allocate(64), length: 64, flags: 1, next: 0xFFFF)
        try tx.publish(0)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_next_out_of_range")
    }

    @Test func availIndexMoreThanQueueSizeAhead() throws {
        let (bench, tx) = try split()
        bench.store16(65, at: tx.driverArea + 2)
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_avail_index_too_far")
    }

    @Test func readableAfterWritableAndZeroLength() throws {
        let (bench, tx) = try split()
        let buffer = bench.allocate(64)
        tx.add([(buffer, 32, true), (buffer + 32, 32, false)])
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_readable_after_writable")
        let (other, ring) = try split()
        ring.add([(other.allocate(64), 0, false)])
        other.notifyModern(1)
        expectBroken(other, "ring_error_zero_length")
    }

    @Test func descriptorOutsideRAM() throws {
        let (bench, tx) = try split()
        tx.add([(UInt64(16 << 20) - 8, 76, false)])
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_dma")
        #expect(bench.ram.faultCount >= 1, "the access was refused, not made")
        #expect(bench.sentFrames().isEmpty)
    }

    @Test func descriptorWrappingTheAddressSpace() throws {
        let (bench, tx) = try split()
        tx.add([(UInt64.max - 16, 76, false)])
        bench.notifyModern(1)
        expectBroken(bench, "ring_error_dma")
    }

    @Test func descriptorInsideTheDevicesOwnBAR() throws {
        let bench = try VirtioBench(ramSize: 16 << 20)
        let rings = bench.startModern([.mac])
        let buffer = bench.allocate(2048)
        rings.rx.add([(VirtioBench.modernBase, 2048, true)])
        bench.receive(makeFrame(to: bench.mac))
        #expect(bench.needsReset)
        #expect(bench.counter("ring_error_dma") == 1)
        _ = buffer
    }

    @Test func ringOutsideRAM() throws {
        let bench = try VirtioBench()
        #expect(bench.negotiateModern([.version1, .mac]))
        bench.modernWrite(0x16, 2, 1)
        bench.modernWrite(0x20, 8, 0x7FFF_0000_0000)
        bench.modernWrite(0x28, 8, 0x7FFF_0000_1000)
        bench.modernWrite(0x30, 8, 0x7FFF_0000_2000)
        bench.modernWrite(0x1C, 2, 1)
        bench.driverOK()
        bench.notifyModern(1)
        #expect(bench.needsReset)
        #expect(bench.counter("ring_error_dma") >= 1)
    }

    @Test func notifyForAQueueThatDoesNotExist() throws {
        let bench = try VirtioBench()
        _ = bench.startModern([.mac])
        for queue in [3, 7, 0x3FF] { bench.notifyModern(queue) }
        bench.legacyWrite(0x10, 2, 0xFFFF)
        bench.modernWrite(0x3002, 2, 0)
        #expect(bench.counter("notify_invalid_queue") == 4)
        #expect(bench.counter("bad_register_accesses") == 1)
        #expect(!bench.needsReset)
    }

    @Test func queueSelectBeyondTheQueuesThenEnable() throws {
        let bench = try VirtioBench()
        #expect(bench.negotiateModern([.version1, .mac]))
        for index in [3, 40, 0xFFFF] {
            bench.modernWrite(0x16, 2, UInt64(index))
            bench.modernWrite(0x18, 2, 16)
            bench.modernWrite(0x1C, 2, 1)
            #expect(bench.modernRead(0x1C, 2) == 0)
            #expect(bench.modernRead(0x18, 2) == 0)
        }
        bench.driverOK()
        #expect(!bench.needsReset)
    }

    @Test func shortTransmitChains() throws {
        let (bench, tx) = try split()
        let buffer = bench.allocate(64)
        bench.store(netHeader(), at: buffer)
        tx.add([(buffer, 5, false)])
        tx.add([(buffer, 12 + 10, false)])
        bench.notifyModern(1)
        #expect(bench.counter("tx_dropped_short_header") == 1)
        #expect(bench.counter("tx_dropped_runt") == 1)
        #expect(tx.used().count == 2)
        #expect(!bench.needsReset)
    }

    @Test func oversizeTransmitChainIsDropped() throws {
        let (bench, tx) = try split()
        let buffer = bench.allocate(70_000)
        tx.add([(buffer, 70_000, false)])
        bench.notifyModern(1)
        #expect(bench.counter("tx_dropped_oversize") == 1)
        #expect(!bench.needsReset)
    }

    @Test func runtFromTheBackendIsDropped() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        rings.rx.add([(bench.allocate(2048), 2048, true)])
        bench.receive([1, 2, 3])
        #expect(bench.counter("rx_dropped_runt") == 1)
        #expect(rings.rx.used().isEmpty)
    }

    @Test func receiveChainWithoutWritableBuffers() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        rings.rx.add([(bench.allocate(2048), 2048, false)])
        bench.receive(makeFrame(to: bench.mac))
        #expect(bench.needsReset)
        #expect(bench.counter("rx_chain_not_writable") == 1)
    }

    @Test func brokenPackedRingDoesNotSpin() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], size: 8, packed: true)
        let tx = rings.tx
        // Every descriptor available and chained: a chain with no end.
        for slot in 0..<8 {
            let at = tx.descriptorArea + 16 * UInt64(slot)
            bench.store64(bench.allocate(64), at: at)
            bench.store32(64, at: at + 8)
            bench.store16(0x0080 | 1, at: at + 14)
        }
        bench.notifyModern(1)
        #expect(bench.needsReset)
        #expect(bench.counter("ring_error_chain_loop") == 1)
    }

    @Test func brokenDeviceIgnoresFurtherNotifications() throws {
        let (bench, tx) = try split()
        try tx.publish(64)
        bench.notifyModern(1)
        let buffer = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
        tx.add([(buffer, 76, false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("notify_not_ready") == 1)
    }

    @Test func splitQueueSizeThatIsNotAPowerOfTwo() throws {
        let bench = try VirtioBench()
        #expect(bench.negotiateModern([.version1, .mac]))
        _ = bench.setupModernQueue(1, size: 100)
        bench.driverOK()
        #expect(bench.needsReset)
        #expect(bench.counter("ring_error_bad_queue_size") == 1)
    }

    @Test func packedQueueSizeNeedNotBeAPowerOfTwo() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], size: 100, packed: true)
        for _ in 0..<150 {
            let buffer = bench.allocate(76, alignment: 16)
            bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
            rings.tx.add([(buffer, 76, false)])
            bench.notifyModern(1)
            #expect(rings.tx.used().count == 1)
        }
        #expect(!bench.needsReset)
    }

    @Test func largestQueueSize() throws {
        let bench = try VirtioBench(queueSize: 32768, ramSize: 32 << 20)
        let rings = bench.startModern([.mac], size: 32768)
        let buffer = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
        rings.tx.add([(buffer, 76, false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames().count == 1)
        #expect(!bench.needsReset)
    }

    @Test func randomDescriptorSoupNeverTraps() throws {
        var state: UInt64 = 0x1234_5678_9ABC_DEF0
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        for round in 0..<60 {
            let bench = try VirtioBench(ramSize: 4 << 20)
            let packed = round % 2 == 1
            let rings = bench.startModern(
                [.mac, .indirectDescriptors, .eventIndex, .mergeableReceiveBuffers], size: 16, packed: packed)
            for ring in [rings.rx, rings.tx] {
                for offset in stride(from: UInt64(0), to: 16 * 16, by: 8) {
                    var value = next()
                    if value & 3 == 0 { value &= 0x3F_FFFF }  // sometimes a plausible address
                    bench.store64(value, at: ring.descriptorArea + offset)
                }
                bench.store64(next(), at: ring.driverArea)
                bench.store64(next(), at: ring.driverArea + 8)
            }
            for _ in 0..<4 {
                bench.notifyModern(1)
                bench.receive(makeFrame(to: bench.mac, length: 60 + Int(next() % 1500)))
            }
            #expect(bench.ram.accessCount > 0)
        }
    }
}

/// An attachment that hands every frame straight back to the card and services it on the spot, as a host whose
/// `onWork` runs the card synchronously would.
final class SynchronousLoopback: NetworkAttachment, @unchecked Sendable {
    weak var card: VirtioNetCard?
    var depth = 0
    var maximumDepth = 0
    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        depth += 1
        maximumDepth = max(maximumDepth, depth)
        port.deliver(Array(frame), metadata: metadata)
        card?.service()
        depth -= 1
    }
    func didAttach(_ port: FramePort) { port.setCarrier(true) }
}

@Suite("virtio-net re-entrancy")
struct VirtioReentrancyTests {
    @Test func loopedBackFramesAreQueuedNotProcessedRecursively() throws {
        let bench = try VirtioBench(attach: false)
        let loopback = SynchronousLoopback()
        loopback.card = bench.card
        bench.card.port.attach(loopback)
        bench.card.service()
        let rings = bench.startModern([.mac])
        for _ in 0..<8 { rings.rx.add([(bench.allocate(2048), 2048, true)]) }
        for i in 0..<4 {
            let buffer = bench.allocate(76)
            bench.store(netHeader() + makeFrame(to: .broadcast, seed: UInt8(i)), at: buffer)
            rings.tx.add([(buffer, 76, false)])
        }
        bench.notifyModern(1)
        #expect(rings.tx.used().count == 4)
        #expect(rings.rx.used().count == 4)
        #expect(loopback.maximumDepth == 1)
        #expect(bench.counter("rx_frames") == 4)
        #expect(!bench.needsReset)
    }
}

@Suite("virtio-net indirect table bounds")
struct VirtioIndirectBoundTests {
    @Test func indirectTableLongerThanTheLimitIsRefused() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .indirectDescriptors])
        let tx = rings.tx
        try tx.writeDescriptor(0, address: bench.allocate(16 * 1025), length: 16 * 1025, flags: 4, next: 0)
        try tx.publish(0)
        bench.notifyModern(1)
        #expect(bench.needsReset)
        #expect(bench.counter("ring_error_chain_loop") == 1)
    }
}

@Suite("virtio-net random register soup")
struct VirtioRegisterSoupTests {
    /// Random accesses of every width to every BAR and to config space, random RAM and random frames: nothing may
    /// trap, hang or reach outside RAM.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomAccessesNeverTrap(seed: UInt64) throws {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        let bench = try VirtioBench(pairs: 2, queueSize: 16, ramSize: 2 << 20)
        // Give the guest a plausible start half the time, so the soup reaches the data path.
        if seed % 2 == 0 {
            _ = bench.startModern([.mac, .indirectDescriptors, .eventIndex, .mergeableReceiveBuffers], size: 16)
        }
        let widths = [1, 2, 4, 8, 3]
        for _ in 0..<20_000 {
            let width = widths[Int(next() % 5)]
            let value = next()
            switch next() % 10 {
            case 0, 1:
                bench.card.barWrite(0, offset: next() % 80, width: width, value: value)
            case 2:
                _ = bench.card.barRead(0, offset: next() % 80, width: width)
            case 3, 4:
                let offset = [0, 0x1000, 0x2000, 0x3000][Int(next() % 4)] + next() % 0x48
                bench.card.barWrite(4, offset: offset, width: width, value: value % 3 == 0 ? value & 0x1F : value)
            case 5:
                _ = bench.card.barRead(4, offset: next() % 0x4000, width: width)
            case 6:
                bench.card.barWrite(1, offset: next() % 0x1000, width: width, value: value)
            case 7:
                let offset = 0x40 + Int(next() % 0xC0)
                if next() % 2 == 0 {
                    bench.card.configWrite(
                        offset: offset, width: min(width, 4), value: UInt32(truncatingIfNeeded: value))
                } else {
                    _ = bench.card.configRead(offset: offset, width: min(width, 4))
                }
            case 8:
                bench.store64(value, at: (next() % (1 << 20 - 8)) & ~7)
            default:
                bench.receive(makeFrame(to: next() % 2 == 0 ? bench.mac : .broadcast, length: Int(next() % 2000)))
            }
        }
        #expect(bench.card.counters.count > 40)
    }
}
