import E1000
import NICCore
import Testing

/// Transmit command bits (legacy CMD / data DCMD), in the tests' own words.
enum Command {
    static let endOfPacket: UInt8 = 0x01
    static let insertFCS: UInt8 = 0x02
    static let insertChecksum: UInt8 = 0x04
    static let segmentation: UInt8 = 0x04
    static let reportStatus: UInt8 = 0x08
    static let vlan: UInt8 = 0x40
    static let delayInterrupt: UInt8 = 0x80
    static let last: UInt8 = endOfPacket | insertFCS | reportStatus
}

@Suite("e1000 transmit path")
struct E1000TransmitTests {
    @Test(arguments: E1000Chip.allCases)
    func legacyFrame(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        bench.setUpTransmit()
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x3)
        let frame = makeFrame(to: peerAddress, length: 80)
        try bench.queueLegacy(frame)
        bench.ring()
        #expect(bench.sentFrames() == [frame])
        #expect(try bench.transmitStatus(0) & 0x1 == 0x1, "DD")
        #expect(bench.read(0x3810) == 1, "TDH caught up")
        #expect(bench.interrupt)
        #expect(bench.read(0xC0) & 0x3 == 0x3, "TXDW and TXQE")
        #expect(bench.read(0x4080) == 1, "GPTC")
        #expect(bench.read(0x4090) == 84, "GOTCL counts the FCS")
        #expect(bench.read(0x40D4) == 1, "TPT")
        #expect(bench.read(0x40DC) == 1, "PTC127")
        #expect(bench.counter("tx_frames") == 1)
    }

    @Test func descriptorWithoutRSGetsNoDD() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit()
        try bench.queueLegacy(makeFrame(to: peerAddress), command: Command.endOfPacket | Command.insertFCS)
        try bench.queueLegacy(makeFrame(to: peerAddress, seed: 1))
        bench.ring()
        #expect(bench.sentFrames().count == 2)
        #expect(try bench.transmitStatus(0) == 0)
        #expect(try bench.transmitStatus(1) == 1)
        try bench.queueLegacy(makeFrame(to: peerAddress), command: Command.endOfPacket | 0x10)  // RPS
        bench.ring()
        #expect(try bench.transmitStatus(2) == 1, "RPS reports too")
    }

    @Test func chainsAndPadding() throws {
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit()
        let frame = makeFrame(to: .broadcast, length: 300, seed: 4)
        try bench.queueLegacy(Array(frame[0..<14]), command: Command.insertFCS)
        try bench.queueLegacy(Array(frame[14..<100]), command: Command.insertFCS)
        try bench.queueLegacy(Array(frame[100...]))
        let short = Array(makeFrame(to: peerAddress).prefix(42))
        try bench.queueLegacy(short)
        bench.ring()
        let sent = bench.sentFrames()
        #expect(sent.count == 2)
        #expect(sent.first == frame)
        #expect(sent.last == short + [UInt8](repeating: 0, count: 18), "PSP pads to 60")
        #expect(bench.read(0x40F4) == 1, "BPTC")
        bench.write(0x400, 0x0004_0102)  // no PSP
        try bench.queueLegacy(short)
        bench.ring()
        #expect(bench.sentFrames() == [short])
    }

    @Test func legacyChecksumInsertion() throws {
        let bench = try E1000Bench(.i82543GC)
        bench.setUpTransmit()
        var frame = makeTCPFrame(to: peerAddress, payload: Array(0..<77), proto: 17)
        let good = frame
        // The driver seeds the UDP checksum with the pseudo-header sum (length included), as CHECKSUM_PARTIAL does.
        let pseudo = Array(frame[26..<34]) + [0, 17, 0, UInt8(frame.count - 34)]
        let seed = onesSum(pseudo)
        frame[40] = UInt8(seed >> 8)
        frame[41] = UInt8(seed & 0xFF)
        try bench.queueLegacy(frame, command: Command.last | Command.insertChecksum, cso: 40, css: 34)
        bench.ring()
        let sent = try #require(bench.sentFrames().first)
        #expect(checksumsVerify(sent).transport)
        #expect(sent == good)
    }

    @Test func contextChecksumOffload() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit()
        var frame = makeTCPFrame(to: peerAddress, payload: Array(repeating: 0xA5, count: 500))
        frame[24] = 0
        frame[25] = 0
        let pseudo = Array(frame[26..<34]) + [0, 6, UInt8((frame.count - 34) >> 8), UInt8((frame.count - 34) & 0xFF)]
        let seed = onesSum(pseudo)
        frame[50] = UInt8(seed >> 8)
        frame[51] = UInt8(seed & 0xFF)
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 0, command: 0x03,
            headerLength: 0, mss: 0)
        try bench.queueData(Array(frame[0..<60]), command: Command.insertFCS, options: 0x03)
        try bench.queueData(Array(frame[60...]), command: Command.last, options: 0)
        bench.ring()
        let sent = try #require(bench.sentFrames().first)
        let verified = checksumsVerify(sent)
        #expect(verified.ip && verified.transport)
        #expect(sent.count == frame.count)
        #expect(try bench.transmitStatus(0) == 0, "context without RS")
        #expect(try bench.transmitStatus(2) == 1)
    }

    /// A TSO frame as Linux's e1000_tso prepares it: IP total length and checksum 0, the TCP checksum seeded with
    /// the pseudo-header sum without the length.
    static func tsoFrame(payload: [UInt8], flags: UInt8 = 0x19, to destination: MACAddress = peerAddress) -> [UInt8] {
        var frame = makeTCPFrame(to: destination, payload: payload, sequence: 0xFFFF_F000, flags: flags)
        frame[16] = 0
        frame[17] = 0
        frame[24] = 0
        frame[25] = 0
        let seed = onesSum(Array(frame[26..<34]) + [0, 6])
        frame[50] = UInt8(seed >> 8)
        frame[51] = UInt8(seed & 0xFF)
        return frame
    }

    @Test(arguments: [(4000, 1000), (4001, 1460), (100, 1460), (9000, 8000)])
    func segmentationOffloadIPv4(payloadLength: Int, mss: Int) throws {
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit()
        let payload = (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let frame = Self.tsoFrame(payload: payload)
        // A checksum context first: the TSO context must stay separate.
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: payloadLength,
            command: 0x07, headerLength: 54, mss: mss)
        try bench.queueContext(
            ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, payloadLength: 0, command: 0x00,
            headerLength: 0, mss: 0)
        try bench.queueData(Array(frame[0..<54]), command: Command.segmentation | Command.insertFCS, options: 0x03)
        try bench.queueData(Array(frame[54..<(54 + payloadLength / 2)]), command: Command.segmentation, options: 0)
        try bench.queueData(
            Array(frame[(54 + payloadLength / 2)...]), command: Command.segmentation | Command.last, options: 0)
        bench.ring()
        let segments = bench.sentFrames()
        let expectedCount = (payloadLength + mss - 1) / mss
        try #require(segments.count == expectedCount)
        var reassembled: [UInt8] = []
        for (index, segment) in segments.enumerated() {
            let last = index == expectedCount - 1
            let chunk = last ? payloadLength - mss * (expectedCount - 1) : mss
            #expect(segment.count == 54 + chunk)
            #expect(Array(segment[0..<14]) == Array(frame[0..<14]))
            #expect(be16(segment, 16) == UInt16(40 + chunk), "IP total length")
            #expect(be16(segment, 18) == 0x1234 &+ UInt16(index), "IP identification")
            #expect(be32(segment, 38) == 0xFFFF_F000 &+ UInt32(index * mss), "sequence")
            #expect(segment[47] == (last ? 0x19 : 0x10), "PSH and FIN on the last segment only")
            let verified = checksumsVerify(segment)
            #expect(verified.ip, "IP checksum of segment \(index)")
            #expect(verified.transport, "TCP checksum of segment \(index)")
            reassembled += segment[54...]
        }
        #expect(reassembled == payload)
        #expect(bench.read(0x40F8) == 1, "TSCTC")
        #expect(bench.read(0x4080) == UInt32(expectedCount), "GPTC counts segments")
    }

    @Test func segmentationOffloadIPv6() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit()
        let source: [UInt8] = [0xFD, 0] + [UInt8](repeating: 0, count: 13) + [2]
        let destination: [UInt8] = [0xFD, 0] + [UInt8](repeating: 0, count: 13) + [1]
        let ip: [UInt8] = [0x60, 0, 0, 0, 0, 0, 6, 64] + source + destination
        var tcp: [UInt8] = [0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        let seed = onesSum(source + destination + [0, 6])
        tcp[16] = UInt8(seed >> 8)
        tcp[17] = UInt8(seed & 0xFF)
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        let frame = peerAddress.bytes + E1000Bench.mac.bytes + [0x86, 0xDD] + ip + tcp + payload
        try bench.queueContext(
            ipcss: 14, ipcso: 0, ipcse: 0, tucss: 54, tucso: 70, tucse: 0, payloadLength: 3000, command: 0x05,
            headerLength: 74, mss: 1200)
        try bench.queueData(frame, command: Command.segmentation | Command.last, options: 0x02)
        bench.ring()
        let segments = bench.sentFrames()
        try #require(segments.count == 3)
        for (index, segment) in segments.enumerated() {
            let chunk = index == 2 ? 600 : 1200
            #expect(be16(segment, 18) == UInt16(20 + chunk), "IPv6 payload length")
            #expect(be32(segment, 58) == 1 + UInt32(index * 1200))
            let transport = Array(segment[54...])
            let length = transport.count
            let pseudo = source + destination + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, 6]
            #expect(onesSum(pseudo + transport) == 0xFFFF, "TCP checksum of segment \(index)")
        }
    }

    @Test func vlanInsertion() throws {
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit()
        let frame = makeFrame(to: peerAddress, length: 100)
        try bench.queueLegacy(frame, command: Command.last | Command.vlan, special: 0x6005)
        bench.ring()
        #expect(bench.sentFrames() == [frame], "VLE without CTRL.VME inserts nothing")
        bench.write(0, bench.read(0) | 1 << 30)
        try bench.queueLegacy(frame, command: Command.last | Command.vlan, special: 0x6005)
        bench.ring()
        #expect(bench.sentFrames() == [Array(frame[0..<12]) + [0x81, 0x00, 0x60, 0x05] + Array(frame[12...])])
        bench.write(0x38, 0x88A8)
        try bench.queueLegacy(frame, command: Command.last | Command.vlan, special: 0x0007)
        bench.ring()
        #expect(bench.sentFrames().first?[12..<16] == [0x88, 0xA8, 0x00, 0x07], "the tag uses VET")
    }

    @Test func loopbackReachesTheReceiverNotTheWire() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(rctl: RCTLBits.enable | RCTLBits.broadcastAccept | RCTLBits.macLoopback)
        bench.setUpTransmit()
        let frame = makeFrame(to: E1000Bench.mac, length: 90)
        try bench.queueLegacy(frame)
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.receivedBytes(0) == frame + frameCheckSequence(frame))
        #expect(bench.counter("loopback_frames") == 1)
        // Loopback works without a cable.
        bench.card.cableConnected = false
        try bench.queueLegacy(frame)
        bench.ring()
        #expect(bench.read(0x2810) == 2)
    }

    @Test func linkDownDropsTransmittedFrames() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit()
        bench.card.cableConnected = false
        try bench.queueLegacy(makeFrame(to: peerAddress))
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitStatus(0) == 1, "the descriptor still completes")
        #expect(bench.counter("tx_dropped_link_down") == 1)
    }

    @Test func transmitDelayTimers() throws {
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit()
        bench.write(0x3820, 10)  // TIDV 10.24 µs
        bench.write(0x382C, 30)  // TADV 30.72 µs
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x1)
        try bench.queueLegacy(makeFrame(to: peerAddress), command: Command.last | Command.delayInterrupt)
        bench.ring()
        #expect(!bench.interrupt)
        bench.clock.advance(by: .microseconds(10))
        #expect(!bench.interrupt)
        bench.clock.advance(by: .nanoseconds(300))
        #expect(bench.interrupt, "TIDV")
        _ = bench.read(0xC0)
        for _ in 0..<4 {
            try bench.queueLegacy(makeFrame(to: peerAddress), command: Command.last | Command.delayInterrupt)
            bench.ring()
            bench.clock.advance(by: .microseconds(8))
        }
        #expect(bench.interrupt, "TADV caps the delay")
        _ = bench.read(0xC0)
        try bench.queueLegacy(makeFrame(to: peerAddress))
        bench.ring()
        #expect(bench.interrupt, "no IDE: at once")
    }

    @Test func transmitterOffOrBusMasteringOffWaits() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit(tctl: 0x0004_0108)
        try bench.queueLegacy(makeFrame(to: peerAddress))
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.read(0x3810) == 0)
        bench.card.configWrite(offset: 0x04, width: 2, value: 0x0003)
        bench.write(0x400, 0x0004_010A)
        #expect(bench.sentFrames().isEmpty, "no bus mastering")
        bench.card.configWrite(offset: 0x04, width: 2, value: 0x0007)
        #expect(bench.sentFrames().count == 1, "bus mastering on resumes the ring")
    }
}
