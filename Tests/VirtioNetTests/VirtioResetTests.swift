import NICCore
import NICHarness
import Testing

@testable import VirtioNet

@Suite("virtio-net reset")
struct VirtioResetTests {
    @Test func statusZeroReturnsEveryQueueAndRegister() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        let rings = bench.startModern([.mac, .eventIndex, .mergeableReceiveBuffers])
        bench.modernWrite(0x10, 2, 2)
        let buffer = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
        rings.tx.add([(buffer, 76, false)])
        bench.notifyModern(1)
        bench.modernWrite(0x14, 1, 0)
        #expect(bench.status == 0)
        #expect(bench.card.negotiated.isEmpty)
        #expect(bench.modernRead(0x10, 2) == 0xFFFF)
        for queue in 0..<3 {
            bench.modernWrite(0x16, 2, UInt64(queue))
            #expect(bench.modernRead(0x18, 2) == (queue == 2 ? 64 : 256))
            #expect(bench.modernRead(0x1A, 2) == 0xFFFF)
            #expect(bench.modernRead(0x1C, 2) == 0)
            #expect(bench.modernRead(0x20, 8) == 0)
        }
        #expect(bench.modernRead(0x1000, 1) == 0)
        // A second initialisation on fresh rings works from index 0.
        let again = bench.startModern([.mac])
        let second = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast, seed: 1), at: second)
        again.tx.add([(second, 76, false)])
        bench.notifyModern(1)
        #expect(again.tx.used().count == 1)
        #expect(bench.sentFrames().count == 2)
    }

    @Test func resetClearsNeedsReset() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        try rings.tx.publish(500)
        bench.notifyModern(1)
        #expect(bench.needsReset)
        bench.modernWrite(0x14, 1, 0)
        #expect(!bench.needsReset)
        _ = bench.startModern([.mac])
        #expect(bench.status == 0x0F)
    }

    @Test func pciResetRestoresConfigSpaceAndMSIX() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        _ = bench.startModern([.mac])
        bench.card.reset()
        #expect(bench.card.configRead(offset: 0x04, width: 2) == 0)
        #expect(bench.card.configRead(offset: 0x20, width: 4) == 0x0C)
        let cap = try #require(bench.msixCapability())
        #expect(bench.card.configRead(offset: cap + 2, width: 2) & 0x8000 == 0)
        bench.card.configWrite(offset: 0x14, width: 4, value: UInt32(VirtioBench.msixBase))
        bench.card.configWrite(offset: 0x04, width: 2, value: 7)
        #expect(bench.card.barRead(1, offset: 12, width: 4) == 1, "vectors masked again")
        #expect(bench.card.status.isEmpty)
    }

    @Test func frameWaitingForBuffersIsDroppedByReset() throws {
        let bench = try VirtioBench()
        _ = bench.startModern([.mac])
        bench.receive(makeFrame(to: bench.mac))
        #expect(bench.card.pairs[0].stalled != nil)
        bench.modernWrite(0x14, 1, 0)
        #expect(bench.card.pairs[0].stalled == nil)
    }
}
