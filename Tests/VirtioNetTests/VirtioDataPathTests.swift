import NICCore
import NICHarness
import Testing

@testable import VirtioNet

@Suite("virtio-net transmit and receive")
struct VirtioDataPathTests {
    @Test(arguments: [false, true])
    func modernTransmitSendsTheFrameWithoutTheHeader(packed: Bool) throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], packed: packed)
        let frame = makeFrame(to: .broadcast, length: 60)
        let buffer = bench.allocate(12 + frame.count)
        bench.store(netHeader() + frame, at: buffer)
        rings.tx.add([(buffer, UInt32(12 + frame.count), false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames() == [frame])
        let used = rings.tx.used()
        #expect(used.count == 1 && used.first?.length == 0)
        #expect(bench.counter("tx_frames") == 1)
        #expect(bench.counter("tx_bytes") == 60)
        #expect(!bench.needsReset)
    }

    @Test func transmitGathersHeaderAndFrameFromSeveralDescriptors() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let frame = makeFrame(to: .broadcast, length: 200)
        let header = bench.allocate(12)
        let part1 = bench.allocate(50)
        let part2 = bench.allocate(150)
        bench.store(netHeader(), at: header)
        bench.store(Array(frame[0..<50]), at: part1)
        bench.store(Array(frame[50...]), at: part2)
        rings.tx.add([(header, 12, false), (part1, 50, false), (part2, 150, false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames() == [frame])
    }

    @Test(arguments: [false, true])
    func modernReceiveFillsHeaderAndFrame(packed: Bool) throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], packed: packed)
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 2048, true)])
        let frame = makeFrame(to: bench.mac, length: 300)
        bench.receive(frame)
        let used = rings.rx.used()
        #expect(used.count == 1)
        #expect(used.first?.length == 12 + 300)
        #expect(bench.load(buffer, 12) == netHeader(buffers: 1))
        #expect(bench.load(buffer + 12, 300) == frame)
        #expect(bench.counter("rx_frames") == 1)
        #expect(bench.counter("rx_bytes") == 300)
    }

    @Test func legacyTransmitAndReceiveUseTenByteHeaders() throws {
        let bench = try VirtioBench()
        let rings = bench.startLegacy(UInt32(VirtioFeatures.mac.rawValue))
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 10, true), (buffer + 10, 2038, true)])
        let frame = makeFrame(to: bench.mac, length: 100)
        bench.receive(frame)
        #expect(rings.rx.used().first?.length == 110)
        #expect(bench.load(buffer + 10, 100) == frame)

        let out = makeFrame(to: .broadcast, length: 80, seed: 9)
        let tx = bench.allocate(90)
        bench.store(netHeader(length: 10) + out, at: tx)
        rings.tx.add([(tx, 90, false)])
        bench.legacyWrite(0x10, 2, 1)
        #expect(bench.sentFrames() == [out])
    }

    @Test func receiveWaitsForBuffersInsteadOfDropping() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let frame = makeFrame(to: bench.mac, length: 100)
        bench.receive(frame)
        #expect(bench.counter("rx_stalls") == 1)
        let buffer = bench.allocate(2048)
        rings.rx.add([(buffer, 2048, true)])
        bench.notifyModern(0)
        #expect(rings.rx.used().count == 1)
        #expect(bench.load(buffer + 12, 100) == frame)
    }

    @Test func mergeableBuffersSpreadALargeFrame() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .mergeableReceiveBuffers])
        let buffers = (0..<4).map { _ in bench.allocate(512) }
        for buffer in buffers { rings.rx.add([(buffer, 512, true)]) }
        let frame = makeFrame(to: bench.mac, length: 1514)
        bench.receive(frame)
        let used = rings.rx.used()
        #expect(used.map(\.length) == [512, 512, 502])
        #expect(bench.load(buffers[0], 12) == netHeader(buffers: 3))
        let data = bench.load(buffers[0] + 12, 500) + bench.load(buffers[1], 512) + bench.load(buffers[2], 502)
        #expect(data == frame)
        #expect(bench.counter("rx_merged_buffers") == 2)
    }

    @Test func withoutMergeableBuffersAFrameLargerThanTheChainIsDroppedAndTheBufferKept() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        let small = bench.allocate(256)
        rings.rx.add([(small, 256, true)])
        bench.receive(makeFrame(to: bench.mac, length: 1514))
        #expect(bench.counter("rx_dropped_too_large") == 1)
        #expect(rings.rx.used().isEmpty)
        // The buffer is still there for the next frame that fits: no stall.
        let fits = makeFrame(to: bench.mac, length: 200)
        bench.receive(fits)
        #expect(rings.rx.used().first?.length == 212)
        #expect(bench.load(small + 12, 200) == fits)
        #expect(!bench.needsReset)
    }

    @Test func indirectDescriptorsOnBothRings() throws {
        for packed in [false, true] {
            let bench = try VirtioBench()
            let rings = bench.startModern([.mac, .indirectDescriptors], packed: packed)
            let frame = makeFrame(to: .broadcast, length: 120)
            let header = bench.allocate(12)
            let data = bench.allocate(120)
            bench.store(netHeader(), at: header)
            bench.store(frame, at: data)
            rings.tx.addIndirect([(header, 12, false), (data, 120, false)], table: bench.allocate(32, alignment: 16))
            bench.notifyModern(1)
            #expect(bench.sentFrames() == [frame], "packed \(packed)")
            let rx = bench.allocate(2048)
            rings.rx.addIndirect([(rx, 12, true), (rx + 12, 2036, true)], table: bench.allocate(32, alignment: 16))
            let incoming = makeFrame(to: bench.mac, length: 90)
            bench.receive(incoming)
            #expect(rings.rx.used().first?.length == 102)
            #expect(bench.load(rx + 12, 90) == incoming)
            #expect(!bench.needsReset)
        }
    }

    @Test func linkDownDropsTransmitAndReceive() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .status])
        bench.card.cableConnected = false
        let tx = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast), at: tx)
        rings.tx.add([(tx, 76, false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames().isEmpty)
        #expect(rings.tx.used().count == 1, "the chain still comes back")
        #expect(bench.counter("tx_dropped_link_down") == 1)
        bench.receive(makeFrame(to: bench.mac))
        #expect(bench.counter("rx_dropped_link_down") == 1)
    }

    @Test func manyFramesInOnePassPublishOneUsedIndex() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac], size: 256)
        for i in 0..<256 {
            let buffer = bench.allocate(76, alignment: 16)
            bench.store(netHeader() + makeFrame(to: .broadcast, seed: UInt8(i)), at: buffer)
            rings.tx.add([(buffer, 76, false)])
        }
        bench.notifyModern(1)
        #expect(bench.sentFrames().count == 256)
        #expect(rings.tx.used().count == 256)
        #expect(bench.counter("used_interrupts_wanted") == 1)
    }
}
