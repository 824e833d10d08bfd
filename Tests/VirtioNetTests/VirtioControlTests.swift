import NICCore
import NICHarness
import Testing

@testable import VirtioNet

let controlFeatures: VirtioFeatures = [
    .mac, .controlQueue, .controlReceive, .controlReceiveExtra, .controlVLAN, .controlMACAddress, .guestAnnounce,
    .controlGuestOffloads, .guestChecksum, .guestTSO4, .status,
]

/// The driver side of the control queue.
struct ControlDriver {
    let bench: VirtioBench
    let ring: VirtioDriverQueue
    let queueIndex: Int

    /// Sends class/command/data and returns the device's ack (nil if the chain did not come back).
    func send(_ commandClass: UInt8, _ command: UInt8, _ data: [UInt8]) -> UInt8? {
        let header = bench.allocate(2, alignment: 16)
        let ack = bench.allocate(1, alignment: 16)
        bench.store([commandClass, command], at: header)
        bench.store([0xAA], at: ack)
        var buffers: [(address: UInt64, length: UInt32, writable: Bool)] = [(header, 2, false)]
        if !data.isEmpty {
            let body = bench.allocate(data.count, alignment: 16)
            bench.store(data, at: body)
            buffers.append((body, UInt32(data.count), false))
        }
        buffers.append((ack, 1, true))
        ring.add(buffers)
        bench.notifyModern(queueIndex)
        guard ring.used().first?.length == 1 else { return nil }
        return bench.load(ack, 1)[0]
    }
}

func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) } }

@Suite("virtio-net control queue")
struct VirtioControlTests {
    func start(_ features: VirtioFeatures = controlFeatures, pairs: Int = 1) throws -> (
        VirtioBench, ControlDriver, VirtioDriverQueue
    ) {
        let bench = try VirtioBench(pairs: pairs)
        let rings = bench.startModern(features)
        let index = features.contains(.multiqueue) ? 2 * pairs : 2
        let control = ControlDriver(bench: bench, ring: rings.control!, queueIndex: index)
        for _ in 0..<16 { rings.rx.add([(bench.allocate(2048), 2048, true)]) }
        return (bench, control, rings.rx)
    }

    func delivered(_ bench: VirtioBench, _ rx: VirtioDriverQueue, _ frame: [UInt8]) -> Bool {
        bench.receive(frame)
        return !rx.used().isEmpty
    }

    @Test func promiscuousIsOnUntilTheDriverTurnsItOff() throws {
        let (bench, control, rx) = try start()
        let stranger = MACAddress("02:99:00:00:00:01")!
        #expect(delivered(bench, rx, makeFrame(to: stranger)))
        #expect(control.send(0, 0, [0]) == 0)
        #expect(!delivered(bench, rx, makeFrame(to: stranger)))
        #expect(delivered(bench, rx, makeFrame(to: bench.mac)))
        #expect(delivered(bench, rx, makeFrame(to: .broadcast)))
        #expect(bench.counter("rx_filtered") == 1)
    }

    @Test func receiveModes() throws {
        let (bench, control, rx) = try start()
        #expect(control.send(0, 0, [0]) == 0)
        let group = MACAddress("01:00:5e:00:00:01")!
        let stranger = MACAddress("02:99:00:00:00:01")!
        #expect(!delivered(bench, rx, makeFrame(to: group)))
        #expect(control.send(0, 1, [1]) == 0)  // allmulti
        #expect(delivered(bench, rx, makeFrame(to: group)))
        #expect(control.send(0, 3, [1]) == 0)  // nomulti wins
        #expect(!delivered(bench, rx, makeFrame(to: group)))
        #expect(control.send(0, 2, [1]) == 0)  // alluni
        #expect(delivered(bench, rx, makeFrame(to: stranger)))
        #expect(control.send(0, 4, [1]) == 0)  // nouni
        #expect(!delivered(bench, rx, makeFrame(to: bench.mac)))
        #expect(control.send(0, 5, [1]) == 0)  // nobcast
        #expect(!delivered(bench, rx, makeFrame(to: .broadcast)))
        #expect(control.send(0, 6, [1]) == 1, "unknown mode")
        #expect(control.send(0, 0, [1, 1]) == 1, "wrong length")
    }

    @Test func macTableSetFiltersUnicastAndMulticast() throws {
        let (bench, control, rx) = try start()
        #expect(control.send(0, 0, [0]) == 0)
        let extra = MACAddress("02:11:22:33:44:55")!
        let group = MACAddress("33:33:00:00:00:01")!
        #expect(control.send(1, 0, le32(1) + extra.bytes + le32(1) + group.bytes) == 0)
        #expect(delivered(bench, rx, makeFrame(to: extra)))
        #expect(delivered(bench, rx, makeFrame(to: group)))
        #expect(!delivered(bench, rx, makeFrame(to: MACAddress("33:33:00:00:00:02")!)))
    }

    @Test func macTableCountsThatLieAreRefused() throws {
        let (bench, control, _) = try start()
        // CVE-2014-0150: a multicast count that would overflow a 32-bit sum.
        #expect(control.send(1, 0, le32(1) + bench.mac.bytes + le32(0xFFFF_FFFF)) == 1)
        #expect(control.send(1, 0, le32(0x2AAA_AAAB) + bench.mac.bytes + le32(0)) == 1)
        #expect(control.send(1, 0, le32(0)) == 1, "missing multicast table")
        #expect(!bench.needsReset)
    }

    @Test func macTableLongerThanTheTableOverflowsToAcceptAll() throws {
        let (bench, control, rx) = try start()
        #expect(control.send(0, 0, [0]) == 0)
        var unicast: [UInt8] = []
        for i in 0..<100 { unicast += [0x02, 0, 0, 0, 1, UInt8(i)] }
        #expect(control.send(1, 0, le32(100) + unicast + le32(0)) == 0)
        #expect(delivered(bench, rx, makeFrame(to: MACAddress("02:77:77:77:77:77")!)))
    }

    @Test func macAddressSetChangesTheFilterAndConfig() throws {
        let (bench, control, rx) = try start()
        #expect(control.send(0, 0, [0]) == 0)
        let new = MACAddress("52:54:00:aa:bb:cc")!
        #expect(control.send(1, 1, new.bytes) == 0)
        #expect((0..<6).map { UInt8(bench.modernRead(0x2000 + UInt64($0), 1)) } == new.bytes)
        #expect(delivered(bench, rx, makeFrame(to: new)))
        #expect(!delivered(bench, rx, makeFrame(to: bench.mac)))
        #expect(control.send(1, 1, [1, 2, 3]) == 1)
    }

    @Test func vlanFilter() throws {
        let (bench, control, rx) = try start()
        #expect(control.send(0, 0, [0]) == 0)
        func tagged(_ vlan: UInt16) -> [UInt8] {
            bench.mac.bytes + peerMAC.bytes + [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF), 0x08, 0x00]
                + [UInt8](repeating: 0, count: 46)
        }
        #expect(!delivered(bench, rx, tagged(5)), "with CTRL_VLAN every VLAN starts filtered")
        #expect(control.send(2, 0, [5, 0]) == 0)
        #expect(delivered(bench, rx, tagged(5)))
        #expect(control.send(2, 1, [5, 0]) == 0)
        #expect(!delivered(bench, rx, tagged(5)))
        #expect(control.send(2, 0, [0x00, 0x10]) == 1, "vid 4096")
        #expect(control.send(2, 0, [0xFF, 0x0F]) == 0, "vid 4095")
    }

    @Test func announceAndAck() throws {
        let (bench, control, _) = try start()
        #expect(control.send(3, 0, []) == 1, "nothing to acknowledge")
        _ = bench.modernRead(0x1000, 1)
        bench.card.announce()
        #expect(bench.modernRead(0x2006, 2) & 2 == 2)
        #expect(bench.modernRead(0x1000, 1) == 2, "config interrupt")
        #expect(control.send(3, 0, []) == 0)
        #expect(bench.modernRead(0x2006, 2) & 2 == 0)
    }

    @Test func guestOffloadsSet() throws {
        let (bench, control, _) = try start()
        #expect(control.send(5, 0, le32(UInt32(VirtioFeatures.guestChecksum.rawValue)) + le32(0)) == 0)
        #expect(bench.card.guestOffloads == .guestChecksum)
        #expect(control.send(5, 0, le32(UInt32(VirtioFeatures.guestUFO.rawValue)) + le32(0)) == 1, "not negotiated")
        #expect(control.send(5, 0, le32(UInt32(VirtioFeatures.guestTSO4.rawValue)) + le32(0)) == 1, "TSO4 without CSUM")
        #expect(control.send(5, 0, le32(0)) == 1, "short")
        #expect(control.send(5, 0, le32(0) + le32(0)) == 0)
        #expect(bench.card.guestOffloads.isEmpty)
    }

    @Test func commandsWithoutTheirFeatureAreRefused() throws {
        let (_, control, _) = try start([.mac, .controlQueue])
        #expect(control.send(0, 0, [0]) == 1)
        #expect(control.send(1, 1, [2, 0, 0, 0, 0, 1]) == 1)
        #expect(control.send(2, 0, [1, 0]) == 1)
        #expect(control.send(4, 0, [1, 0]) == 1)
        #expect(control.send(9, 0, []) == 1)
    }

    @Test func multiqueuePairsSet() throws {
        let (bench, control, _) = try start(controlFeatures.union(.multiqueue), pairs: 4)
        #expect(control.send(4, 0, [3, 0]) == 0)
        #expect(bench.card.activeQueuePairs == 3)
        #expect(control.send(4, 0, [0, 0]) == 1)
        #expect(control.send(4, 0, [5, 0]) == 1)
        #expect(bench.card.activeQueuePairs == 3)
    }

    @Test func controlChainWithoutAnAckBufferNeedsReset() throws {
        let (bench, control, _) = try start()
        let header = bench.allocate(2)
        bench.store([0, 0], at: header)
        control.ring.add([(header, 2, false)])
        bench.notifyModern(2)
        #expect(bench.needsReset)
        #expect(bench.counter("control_malformed") == 1)
    }
}
