import NICCore
import NICHarness
import Testing

@testable import VirtioNet

@Suite("virtio-net transport details")
struct VirtioTransportDetailTests {
    @Test func pciConfigAccessWindowWritesReachTheBAR() throws {
        let bench = try VirtioBench()
        let cap = try #require(bench.virtioCapabilities()[5]).capOffset
        bench.card.configWrite(offset: cap + 4, width: 1, value: 4)  // BAR4
        bench.card.configWrite(offset: cap + 8, width: 4, value: 0x14)  // device_status
        bench.card.configWrite(offset: cap + 12, width: 4, value: 1)
        bench.card.configWrite(offset: cap + 16, width: 4, value: 1)  // ACKNOWLEDGE
        #expect(bench.status == 1)
        bench.card.configWrite(offset: cap + 16, width: 4, value: 3)  // DRIVER
        #expect(bench.status == 3)
        #expect(bench.counter("pci_cfg_access_writes") == 2)
        // Reads go through to the BAR: the status, then the MAC's first two bytes from the device config.
        #expect(bench.card.configRead(offset: cap + 16, width: 4) == 3)
        bench.card.configWrite(offset: cap + 8, width: 4, value: 0x2000)
        bench.card.configWrite(offset: cap + 12, width: 4, value: 2)
        #expect(bench.card.configRead(offset: cap + 16, width: 2) == 0x5452)
        // The ISR through the window is read-to-clear too.
        _ = bench.startModern([.mac])
        bench.card.cableConnected = false
        bench.card.configWrite(offset: cap + 8, width: 4, value: 0x1000)
        bench.card.configWrite(offset: cap + 12, width: 4, value: 1)
        #expect(bench.card.configRead(offset: cap + 16, width: 1) == 2)
        #expect(!bench.line.level)
        #expect(bench.card.configRead(offset: cap + 16, width: 1) == 0)
    }

    @Test func configGenerationMovesWithTheConfig() throws {
        let bench = try VirtioBench()
        _ = bench.startModern([.mac, .status])
        let before = bench.modernRead(0x15, 1)
        bench.card.cableConnected = false
        #expect(bench.modernRead(0x15, 1) == (before + 1) & 0xFF)
    }

    @Test func legacyDriverMayWriteTheMACInTheConfig() throws {
        let bench = try VirtioBench()
        _ = bench.startLegacy(UInt32(VirtioFeatures.mac.rawValue))
        let new: [UInt8] = [0x52, 0x54, 0x00, 0x65, 0x43, 0x21]
        for (i, byte) in new.enumerated() { bench.legacyWrite(20 + UInt64(i), 1, UInt64(byte)) }
        #expect(bench.card.currentMAC == MACAddress(bytes: new))
        // A modern driver cannot.
        let modern = try VirtioBench()
        _ = modern.startModern([.mac])
        modern.modernWrite(0x2000, 1, 0xFF)
        #expect(modern.card.currentMAC == modern.mac)
    }

    @Test func legacyMSIXVectorsDeliver() throws {
        let bench = try VirtioBench()
        bench.enableMSIX()
        bench.legacyWrite(0x12, 1, 1)
        bench.legacyWrite(0x12, 1, 3)
        bench.legacyWrite(0x04, 4, VirtioFeatures([.mac, .status]).rawValue)
        bench.legacyWrite(0x14, 2, 2)
        bench.legacyWrite(0x0E, 2, 1)
        bench.legacyWrite(0x16, 2, 1)
        let tx = bench.setupLegacyQueue(1)
        bench.legacyWrite(0x12, 1, 7)
        let buffer = bench.allocate(76)
        bench.store(netHeader() + makeFrame(to: .broadcast), at: buffer)
        tx.add([(buffer, 76, false)])
        bench.legacyWrite(0x10, 2, 1)
        #expect(bench.msix.take(vector: 1) == 1)
        bench.card.cableConnected = false
        #expect(bench.msix.take(vector: 2) == 1)
        #expect(!bench.line.level)
    }

    @Test func legacyQueueAddressZeroDisablesTheQueue() throws {
        let bench = try VirtioBench()
        _ = bench.startLegacy(UInt32(VirtioFeatures.mac.rawValue))
        bench.legacyWrite(0x0E, 2, 1)
        #expect(bench.legacyRead(0x08, 4) != 0)
        bench.legacyWrite(0x08, 4, 0)
        #expect(bench.legacyRead(0x08, 4) == 0)
    }

    @Test func packedChainsAndMergeableReceive() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac, .mergeableReceiveBuffers], size: 8, packed: true)
        let tx = rings.tx
        let frame = makeFrame(to: .broadcast, length: 300)
        let header = bench.allocate(12)
        let body = bench.allocate(300)
        bench.store(netHeader(), at: header)
        bench.store(frame, at: body)
        let id = tx.add([(header, 12, false), (body, 100, false), (body + 100, 200, false)])
        bench.notifyModern(1)
        #expect(bench.sentFrames() == [frame])
        #expect(tx.used().map(\.id) == [id])
        // The next chain starts three slots on.
        let again = tx.add([(header, 12, false), (body, 300, false)])
        bench.notifyModern(1)
        #expect(tx.used().map(\.id) == [again])
        #expect(bench.sentFrames().count == 1)

        let rx = rings.rx
        let buffers = (0..<3).map { _ in bench.allocate(600) }
        for buffer in buffers { rx.add([(buffer, 600, true)]) }
        let big = makeFrame(to: bench.mac, length: 1400)
        bench.receive(big)
        let used = rx.used()
        #expect(used.map(\.length) == [600, 600, 212])
        #expect(bench.load(buffers[0], 12) == netHeader(buffers: 3))
        #expect(bench.load(buffers[0] + 12, 588) + bench.load(buffers[1], 600) + bench.load(buffers[2], 212) == big)
    }

    @Test func servicePairDrainsOnlyItsOwnWork() throws {
        let bench = try VirtioBench()
        let rings = bench.startModern([.mac])
        bench.receive(makeFrame(to: bench.mac))  // stalls: no buffers
        rings.rx.add([(bench.allocate(2048), 2048, true)])
        bench.card.servicePair(0)
        #expect(rings.rx.used().count == 1)
        bench.card.servicePair(7)  // no such pair: ignored
    }
}
