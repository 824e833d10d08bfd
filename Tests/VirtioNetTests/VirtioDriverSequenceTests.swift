import NICCore
import NICHarness
import Testing

@testable import VirtioNet

/// What Linux's virtio_net accepts of what this device offers (it no longer uses HOST_UFO).
let linuxFeatures = VirtioFeatures.offered.subtracting(.hostUFO)

/// The bring-up sequences of Linux's virtio_pci_modern / virtio_pci_legacy and virtio_net, step by step.
@Suite("virtio-net driver sequences")
struct VirtioDriverSequenceTests {
    @Test(arguments: [false, true])
    func modernProbeAsLinuxDoesIt(packed: Bool) throws {
        let bench = try VirtioBench(pairs: 2)
        let caps = bench.virtioCapabilities()
        let common = try #require(caps[1])
        let notify = try #require(caps[2])
        let notifyMultiplier = UInt64(bench.card.configRead(offset: notify.capOffset + 16, width: 4))
        #expect(common.bar == 4 && common.length >= 0x38)
        // Reset, then ACKNOWLEDGE and DRIVER.
        bench.modernWrite(common.offset + 0x14, 1, 0)
        #expect(bench.modernRead(common.offset + 0x14, 1) == 0)
        bench.modernWrite(common.offset + 0x14, 1, 1)
        bench.modernWrite(common.offset + 0x14, 1, 3)
        let offered = bench.modernDeviceFeatures()
        var wanted = offered.intersection(linuxFeatures)
        if !packed { wanted.remove(.packedRing) }
        for select in 0..<2 {
            bench.modernWrite(common.offset + 0x08, 4, UInt64(select))
            bench.modernWrite(common.offset + 0x0C, 4, (wanted.rawValue >> (32 * UInt64(select))) & 0xFFFF_FFFF)
        }
        bench.modernWrite(common.offset + 0x14, 1, 0x0B)
        #expect(bench.modernRead(common.offset + 0x14, 1) & 0x08 != 0, "FEATURES_OK kept")
        // Config, read the way virtio_cread does: generation before and after.
        var mac: [UInt8] = []
        var generation: UInt64 = 0
        repeat {
            generation = bench.modernRead(common.offset + 0x15, 1)
            mac = (0..<6).map { UInt8(bench.modernRead(0x2000 + UInt64($0), 1)) }
        } while generation != bench.modernRead(common.offset + 0x15, 1)
        #expect(mac == bench.mac.bytes)
        let pairs = Int(bench.modernRead(0x2008, 2))
        #expect(pairs == 2)
        // MSI-X: config vector 0, then one vector per queue; every write is read back.
        bench.enableMSIX()
        bench.modernWrite(common.offset + 0x10, 2, 0)
        #expect(bench.modernRead(common.offset + 0x10, 2) == 0)
        let queueCount = Int(bench.modernRead(common.offset + 0x12, 2))
        #expect(queueCount == 2 * pairs + 1)
        var rings: [VirtioDriverQueue] = []
        for queue in 0..<queueCount {
            bench.modernWrite(common.offset + 0x16, 2, UInt64(queue))
            let size = Int(bench.modernRead(common.offset + 0x18, 2))
            #expect(size == (queue == queueCount - 1 ? 64 : 256))
            #expect(bench.modernRead(common.offset + 0x1C, 2) == 0)
            let ring = bench.setupModernQueue(queue, size: size, packed: packed, vector: UInt16(queue + 1))
            #expect(bench.modernRead(common.offset + 0x1A, 2) == UInt64(queue + 1))
            #expect(bench.modernRead(common.offset + 0x1E, 2) == UInt64(queue))
            rings.append(ring)
        }
        bench.driverOK()
        #expect(bench.status == 0x0F)
        let control = ControlDriver(bench: bench, ring: rings[queueCount - 1], queueIndex: queueCount - 1)
        #expect(control.send(4, 0, [UInt8(pairs), 0]) == 0, "VQ_PAIRS_SET")
        #expect(control.send(0, 0, [0]) == 0, "RX_PROMISC off")
        #expect(control.send(0, 1, [0]) == 0, "RX_ALLMULTI off")
        #expect(control.send(1, 0, le32(0) + le32(1) + [0x33, 0x33, 0, 0, 0, 1]) == 0, "MAC_TABLE_SET")
        #expect(control.send(2, 0, [0, 0]) == 0, "VLAN_ADD 0")
        // Traffic through pair 0, doorbells at queue_notify_off × multiplier.
        for _ in 0..<8 { rings[0].add([(bench.allocate(2048), 2048, true)]) }
        for _ in 0..<8 { rings[2].add([(bench.allocate(2048), 2048, true)]) }
        let frame = makeFrame(to: bench.mac, length: 400)
        bench.receive(frame)
        #expect(rings[0].used().count + rings[2].used().count == 1)
        let buffer = bench.allocate(12 + 60)
        bench.store(netHeader() + makeFrame(to: .broadcast, length: 60), at: buffer)
        rings[1].add([(buffer, 72, false)])
        bench.modernWrite(notify.offset + 1 * notifyMultiplier, 2, 1)
        #expect(bench.sentFrames().count == 1)
        #expect(bench.msix.total[2] == 1, "transmit queue 1 on vector 2")
        #expect(!bench.needsReset)
    }

    @Test func legacyProbeAsLinuxDoesIt() throws {
        let bench = try VirtioBench()
        bench.legacyWrite(0x12, 1, 0)
        bench.legacyWrite(0x12, 1, 1)
        bench.legacyWrite(0x12, 1, 3)
        let offered = UInt32(bench.legacyRead(0x00, 4))
        bench.legacyWrite(0x04, 4, UInt64(offered & UInt32(truncatingIfNeeded: linuxFeatures.rawValue)))
        #expect(bench.card.headerLength == 12, "MRG_RXBUF negotiated")
        bench.enableMSIX()
        bench.legacyWrite(0x14, 2, 0)
        #expect(bench.legacyRead(0x14, 2) == 0)
        #expect((0..<6).map { UInt8(bench.legacyRead(24 + UInt64($0), 1)) } == bench.mac.bytes)
        var rings: [VirtioDriverQueue] = []
        for queue in 0..<3 {
            bench.legacyWrite(0x0E, 2, UInt64(queue))
            #expect(bench.legacyRead(0x08, 4) == 0, "queue not in use")
            bench.legacyWrite(0x16, 2, UInt64(queue + 1))
            #expect(bench.legacyRead(0x16, 2) == UInt64(queue + 1))
            rings.append(bench.setupLegacyQueue(queue))
        }
        bench.legacyWrite(0x12, 1, 7)
        for _ in 0..<4 { rings[0].add([(bench.allocate(2048), 2048, true)]) }
        bench.legacyWrite(0x10, 2, 0)
        let frame = makeFrame(to: bench.mac, length: 1000)
        bench.receive(frame)
        #expect(rings[0].used().first?.length == 1012)
        #expect(bench.msix.total[1] == 1)
        let header = bench.allocate(2)
        let ack = bench.allocate(1)
        bench.store([0, 0], at: header)
        let data = bench.allocate(1)
        bench.store([0], at: data)
        rings[2].add([(header, 2, false), (data, 1, false), (ack, 1, true)])
        bench.legacyWrite(0x10, 2, 2)
        #expect(bench.load(ack, 1) == [0])
    }
}
