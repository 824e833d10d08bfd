import E1000
import NICCore
import Testing

/// RCTL bits, in the tests' own words.
enum RCTLBits {
    static let enable: UInt32 = 1 << 1
    static let storeBadPackets: UInt32 = 1 << 2
    static let unicastPromiscuous: UInt32 = 1 << 3
    static let multicastPromiscuous: UInt32 = 1 << 4
    static let longPackets: UInt32 = 1 << 5
    static let macLoopback: UInt32 = 1 << 6
    static let broadcastAccept: UInt32 = 1 << 15
    static let vlanFilter: UInt32 = 1 << 18
    static let bufferSizeExtension: UInt32 = 1 << 25
    static let stripCRC: UInt32 = 1 << 26

    static func bufferSize(_ bytes: Int) -> UInt32 {
        switch bytes {
        case 2048: 0
        case 1024: 1 << 16
        case 512: 2 << 16
        case 256: 3 << 16
        case 16384: 1 << 16 | bufferSizeExtension
        case 8192: 2 << 16 | bufferSizeExtension
        default: 3 << 16 | bufferSizeExtension  // 4096
        }
    }
}

@Suite("e1000 receive path")
struct E1000ReceiveTests {
    static let basic = RCTLBits.enable | RCTLBits.broadcastAccept

    @Test(arguments: E1000Chip.allCases)
    func unicastFrameWithFCS(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        try bench.setUpReceive(rctl: Self.basic)
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x80)
        let frame = makeFrame(to: E1000Bench.mac, length: 100)
        bench.deliver(frame)
        let descriptor = try bench.receiveDescriptor(0)
        #expect(descriptor.length == 104)
        #expect(descriptor.status & 0x03 == 0x03, "DD and EOP")
        #expect(descriptor.status & 0x80 == 0, "exact match: no PIF")
        #expect(descriptor.errors == 0)
        #expect(try bench.receivedBytes(0) == frame + frameCheckSequence(frame))
        #expect(bench.read(0x2810) == 1, "RDH advanced")
        #expect(bench.interrupt, "RXT0")
        #expect(bench.read(0xC0) & 0x80 != 0)
        #expect(bench.read(0x4074) == 1, "GPRC")
        #expect(bench.read(0x4074) == 0, "GPRC clears on read")
        #expect(bench.read(0x4088) == 104, "GORCL")
        #expect(bench.read(0x4088) == 104, "GORCL alone does not clear")
        #expect(bench.read(0x408C) == 0, "GORCH")
        #expect(bench.read(0x4088) == 0, "reading GORCH cleared both")
        #expect(bench.read(0x40D0) == 1, "TPR")
        #expect(bench.read(0x4060) == 1, "PRC127")
        #expect(bench.counter("rx_frames") == 1)
    }

    @Test func shortFramesArePaddedAndCRCCanBeStripped() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: Self.basic)
        let frame = makeFrame(to: E1000Bench.mac, length: 42)
        bench.deliver(frame)
        let padded = frame + [UInt8](repeating: 0, count: 18)
        #expect(try bench.receivedBytes(0) == padded + frameCheckSequence(padded))
        bench.write(0x100, Self.basic | RCTLBits.stripCRC)
        bench.deliver(frame)
        #expect(try bench.receiveDescriptor(1).length == 60)
        #expect(try bench.receivedBytes(1) == padded)
    }

    @Test func runtsAndOversizedFramesAreDroppedAndCounted() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(rctl: Self.basic)
        bench.deliver(Array(E1000Bench.mac.bytes.prefix(10)))
        #expect(bench.counter("rx_dropped_runt") == 1)
        #expect(bench.read(0x40A4) == 1, "RUC")
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 1519))  // CVE-2012-6075: 1523 on the wire
        #expect(bench.read(0x40AC) == 1, "ROC")
        #expect(bench.read(0x4040) == 2, "RLEC counts both")
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 1518))
        #expect(try bench.receiveDescriptor(0).length == 1522)
        #expect(bench.read(0x2810) == 1)
        bench.write(0x100, Self.basic | RCTLBits.longPackets | RCTLBits.bufferSize(16384))
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 16381))
        #expect(bench.counter("rx_dropped_oversize") == 2)
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 16380))
        #expect(try bench.receiveDescriptor(1).length == 16384)
    }

    @Test(arguments: [(9014, 4096), (16128, 2048), (9014, 256), (16128, 16384), (1514, 1024)])
    func jumboFramesSpanDescriptors(size: Int, buffer: Int) throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 128, rctl: Self.basic | RCTLBits.longPackets | RCTLBits.bufferSize(buffer))
        let frame = makeFrame(to: E1000Bench.mac, length: size, seed: 9)
        bench.deliver(frame)
        let total = size + 4
        let descriptors = (total + buffer - 1) / buffer
        var bytes: [UInt8] = []
        for i in 0..<descriptors {
            let descriptor = try bench.receiveDescriptor(i)
            let last = i == descriptors - 1
            #expect(descriptor.length == (last ? total - buffer * (descriptors - 1) : buffer))
            #expect(descriptor.status & 0x01 != 0, "DD")
            #expect((descriptor.status & 0x02 != 0) == last, "EOP only on the last")
            bytes += try bench.receivedBytes(i)
        }
        #expect(bytes == frame + frameCheckSequence(frame))
        #expect(bench.read(0x2810) == UInt32(descriptors))
        #expect(try bench.receiveDescriptor(descriptors).status == 0)
    }

    @Test func unicastFilteringThroughReceiveAddresses() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(rctl: Self.basic)
        let other = MACAddress("02:11:22:33:44:55")!
        bench.deliver(makeFrame(to: other))
        #expect(bench.read(0x2810) == 0)
        #expect(bench.counter("rx_filtered") == 1)
        // RA[3] without AV does not match; with AV it does.
        let octets = other.bytes
        let low = UInt32(octets[0]) | UInt32(octets[1]) << 8 | UInt32(octets[2]) << 16 | UInt32(octets[3]) << 24
        bench.write(0x5418, low)
        bench.write(0x541C, UInt32(octets[4]) | UInt32(octets[5]) << 8)
        bench.deliver(makeFrame(to: other))
        #expect(bench.read(0x2810) == 0)
        bench.write(0x541C, UInt32(octets[4]) | UInt32(octets[5]) << 8 | 0x8000_0000)
        bench.deliver(makeFrame(to: other))
        #expect(bench.read(0x2810) == 1)
        #expect(try bench.receiveDescriptor(0).status & 0x80 == 0, "exact")
        // UPE takes any unicast, as an inexact match.
        bench.write(0x100, Self.basic | RCTLBits.unicastPromiscuous)
        bench.deliver(makeFrame(to: MACAddress("02:99:99:99:99:99")!))
        #expect(bench.read(0x2810) == 2)
        #expect(try bench.receiveDescriptor(1).status & 0x80 != 0, "PIF")
    }

    @Test func broadcastNeedsBAM() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: RCTLBits.enable)
        bench.deliver(makeFrame(to: .broadcast))
        #expect(bench.read(0x2810) == 0)
        bench.write(0x100, Self.basic)
        bench.deliver(makeFrame(to: .broadcast))
        #expect(bench.read(0x2810) == 1)
        #expect(bench.read(0x4078) == 1, "BPRC")
    }

    @Test(arguments: 0..<4)
    func multicastHashForEachOffset(offset: Int) throws {
        let bench = try E1000Bench(.i82543GC)
        let rctl = Self.basic | UInt32(offset) << 12
        try bench.setUpReceive(rctl: rctl)
        let group = MACAddress("01:00:5e:7f:a3:c9")!
        // Destination bits 47:36, 46:35, 45:34 or 43:32, counting octet 0 as the least significant.
        let octets = group.bytes
        let littleEndian = octets.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let shift: UInt64 = [36, 35, 34, 32][offset]
        let hash = Int((littleEndian >> shift) & 0xFFF)
        bench.deliver(makeFrame(to: group))
        #expect(bench.read(0x2810) == 0, "no MTA bit yet")
        // A neighbouring bit does not let it through.
        let neighbour = hash ^ 1
        bench.write(0x5200 + 4 * (neighbour >> 5), 1 << UInt32(neighbour & 0x1F))
        bench.deliver(makeFrame(to: group))
        #expect(bench.read(0x2810) == 0)
        bench.write(0x5200 + 4 * (hash >> 5), 1 << UInt32(hash & 0x1F))
        bench.deliver(makeFrame(to: group))
        #expect(bench.read(0x2810) == 1)
        #expect(try bench.receiveDescriptor(0).status & 0x80 != 0, "PIF")
        #expect(bench.read(0x407C) == 1, "MPRC")
    }

    @Test func multicastPromiscuous() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: Self.basic | RCTLBits.multicastPromiscuous)
        bench.deliver(makeFrame(to: MACAddress("01:00:5e:00:00:01")!))
        bench.deliver(makeFrame(to: MACAddress("02:00:5e:00:00:01")!))
        #expect(bench.read(0x2810) == 1, "multicast only")
    }

    static func tagged(_ frame: [UInt8], tci: UInt16) -> [UInt8] {
        Array(frame[0..<12]) + [0x81, 0x00, UInt8(tci >> 8), UInt8(tci & 0xFF)] + Array(frame[12...])
    }

    @Test func vlanStripAndFilter() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(rctl: Self.basic)
        let inner = makeFrame(to: E1000Bench.mac, length: 100)
        let frame = Self.tagged(inner, tci: 0x2064)  // priority 1, VID 100
        // Without VME the tag stays in the buffer.
        bench.deliver(frame)
        #expect(try bench.receivedBytes(0) == frame + frameCheckSequence(frame))
        #expect(try bench.receiveDescriptor(0).status & 0x08 == 0)
        // With VME it is stripped into the special field; the FCS is the one the wire carried.
        bench.write(0, bench.read(0) | 1 << 30)
        bench.deliver(frame)
        let descriptor = try bench.receiveDescriptor(1)
        #expect(descriptor.status & 0x08 != 0, "VP")
        #expect(descriptor.special == 0x2064)
        #expect(try bench.receivedBytes(1) == inner + frameCheckSequence(frame))
        // VFE drops VIDs whose VFTA bit is clear.
        bench.write(0x100, Self.basic | RCTLBits.vlanFilter)
        bench.deliver(frame)
        #expect(bench.read(0x2810) == 2)
        #expect(bench.counter("rx_vlan_filtered") == 1)
        bench.write(0x5600 + 4 * (100 >> 5), 1 << (100 & 0x1F))
        bench.deliver(frame)
        #expect(bench.read(0x2810) == 3)
        // Untagged frames pass the VLAN filter.
        bench.deliver(inner)
        #expect(bench.read(0x2810) == 4)
    }

    @Test func checksumOffloadStatus() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: Self.basic)
        bench.deliver(makeTCPFrame(payload: Array(0..<100)))
        var descriptor = try bench.receiveDescriptor(0)
        #expect(descriptor.status & 0x64 == 0x60, "IPCS and TCPCS, not IXSM")
        #expect(descriptor.errors == 0)
        bench.deliver(makeTCPFrame(payload: Array(0..<100), goodChecksums: false))
        descriptor = try bench.receiveDescriptor(1)
        #expect(descriptor.status & 0x60 == 0x60)
        #expect(descriptor.errors == 0x20, "TCPE")
        bench.deliver(makeTCPFrame(payload: Array(0..<33), proto: 17))
        descriptor = try bench.receiveDescriptor(2)
        #expect(descriptor.status & 0x60 == 0x60, "UDP is reported as TCPCS")
        #expect(descriptor.errors == 0)
        var badIP = makeTCPFrame(payload: [1, 2, 3])
        badIP[14 + 10] ^= 0xFF
        bench.deliver(badIP)
        #expect(try bench.receiveDescriptor(3).errors & 0x40 != 0, "IPE")
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(try bench.receiveDescriptor(4).status & 0x64 == 0, "not IP: no indication")
        bench.write(0x5000, 0)
        bench.deliver(makeTCPFrame(payload: [1]))
        #expect(try bench.receiveDescriptor(5).status & 0x64 == 0x04, "IXSM when RXCSUM is off")
    }

    @Test func fullRingLeavesFramesQueued() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 8, owned: 2, rctl: Self.basic)
        for seed in 0..<4 { bench.card.port.deliver(makeFrame(to: E1000Bench.mac, seed: UInt8(seed))) }
        bench.card.service()
        #expect(bench.read(0x2810) == 2)
        #expect(bench.read(0x40A0) == 1, "RNBC once for the wait")
        #expect(bench.read(0x4010) == 0, "nothing missed")
        #expect(bench.card.port.queuedFrames == 1, "one frame held by the card, one still queued")
        bench.write(0x2818, 4)
        #expect(bench.read(0x2810) == 4)
        #expect(try bench.receivedBytes(3).prefix(64) == makeFrame(to: E1000Bench.mac, seed: 3)[...])
        #expect(bench.counter("rx_frames") == 4)
    }

    @Test func overflowingTheFIFOCountsMissedPackets() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(count: 8, owned: 0, rctl: Self.basic)
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x40)
        for _ in 0..<(FramePort.defaultQueueCapacity + 10) { bench.card.port.deliver(makeFrame(to: E1000Bench.mac)) }
        bench.card.service()
        #expect(bench.read(0x4010) == 10, "MPC")
        #expect(bench.interrupt, "RXO")
        #expect(bench.counter("rx_missed") == 10)
    }

    @Test func minimumThresholdInterrupt() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 16, owned: 15, rctl: Self.basic)  // RDMTS 1/2: 8 of 16
        _ = bench.read(0xC0)
        for _ in 0..<6 { bench.deliver(makeFrame(to: E1000Bench.mac)) }
        #expect(bench.read(0xC0) & 0x10 == 0, "9 free")
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.read(0xC0) & 0x10 != 0, "8 free: RXDMT0")
    }

    @Test func receiverOffLinkDownAndLoopbackModeDrop() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: 0)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_dropped_disabled") == 1)
        bench.write(0x100, Self.basic)
        bench.card.cableConnected = false
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_dropped_link_down") == 1)
        bench.card.cableConnected = true
        bench.write(0x100, Self.basic | RCTLBits.macLoopback)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_dropped_loopback_mode") == 1)
        #expect(bench.read(0x2810) == 0)
    }

    @Test func receiveDelayTimers() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(rctl: Self.basic, rdtr: 10)  // 10.24 µs
        bench.write(0x282C, 25)  // RADV 25.6 µs
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x80)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(!bench.interrupt)
        bench.clock.advance(by: .microseconds(8))
        bench.deliver(makeFrame(to: E1000Bench.mac))  // restarts the packet timer
        bench.clock.advance(by: .microseconds(8))
        #expect(!bench.interrupt)
        bench.clock.advance(by: .microseconds(3))
        #expect(bench.interrupt, "packet timer: 10.24 µs after the last frame")
        _ = bench.read(0xC0)
        // Frames every 8 µs keep restarting RDTR; RADV fires 25.6 µs after the first.
        for _ in 0..<3 {
            bench.deliver(makeFrame(to: E1000Bench.mac))
            bench.clock.advance(by: .microseconds(8))
        }
        #expect(!bench.interrupt)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        bench.clock.advance(by: .microseconds(2))
        #expect(bench.interrupt, "absolute timer")
        _ = bench.read(0xC0)
        // FPD flushes a pending timer at once.
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(!bench.interrupt)
        bench.write(0x2820, 10 | 1 << 31)
        #expect(bench.interrupt)
        #expect(bench.read(0x2820) == 10, "FPD reads 0")
    }
}
