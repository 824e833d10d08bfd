import NICCore
import Testing

@Suite("Wire: byte order") struct ByteOrderTests {
    @Test("readers return nil past the end, at negative offsets and on empty buffers; writers write nothing there")
    func bounds() {
        let bytes: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9A]
        bytes.withUnsafeBytes { raw in
            #expect(raw.load(bigEndian: UInt16.self, at: 0) == 0x1234)
            #expect(raw.load(littleEndian: UInt16.self, at: 0) == 0x3412)
            #expect(raw.load(bigEndian: UInt32.self, at: 1) == 0x3456_789A)
            #expect(raw.load(bigEndian: UInt32.self, at: 2) == nil)
            #expect(raw.load(bigEndian: UInt16.self, at: -1) == nil)
            #expect(raw.load(bigEndian: UInt16.self, at: Int.max) == nil)
            #expect(raw.load(bigEndian: UInt64.self, at: Int.min) == nil)
            #expect(raw.byte(at: 4) == 0x9A)
            #expect(raw.byte(at: 5) == nil)
        }
        #expect(UnsafeRawBufferPointer(start: nil, count: 0).load(bigEndian: UInt16.self, at: 0) == nil)
        var buffer = [UInt8](repeating: 0, count: 4)
        let stored = [
            buffer.store(bigEndian: UInt16(0xABCD), at: 2), buffer.store(bigEndian: UInt16(0xABCD), at: 3),
            buffer.store(littleEndian: UInt32(1), at: Int.max),
        ]
        #expect(stored == [true, false, false])
        #expect(buffer == [0, 0, 0xAB, 0xCD])
        let again = buffer.store(littleEndian: UInt16(0xABCD), at: 0)
        #expect(again)
        #expect(buffer == [0xCD, 0xAB, 0xAB, 0xCD])
    }

    @Test("lenient array access reads zero outside and round-trips what it appends")
    func lenient() {
        var bytes: [UInt8] = []
        bytes.appendBigEndian16(0x0102)
        bytes.appendBigEndian32(0x0304_0506)
        bytes.appendLittleEndian16(0x0807)
        bytes.appendLittleEndian32(0x0C0B_0A09)
        #expect(bytes == Array(1...12))
        #expect(bytes.bigEndian16(at: 0) == 0x0102)
        #expect(bytes.bigEndian32(at: 2) == 0x0304_0506)
        #expect(bytes.bigEndian16(at: 11) == 0x0C00)
        #expect(bytes.bigEndian32(at: -2) == 0x0000_0102)
        #expect(bytes.bigEndian64(at: Int.max) == 0)
        bytes.storeBigEndian16(0xFFFF, at: 11)
        bytes.storeBigEndian32(0xFFFF_FFFF, at: 11)
        bytes.storeBigEndian16(0xFFFF, at: -1)
        #expect(bytes == Array(1...12))
        #expect(bytes.bytes(from: 10, count: 10) == [11, 12])
        #expect(bytes.bytes(from: -5, count: Int.max) == Array(1...12))
    }
}

/// An Ethernet/IPv4/TCP frame to 10.0.2.2:80 from 10.0.2.15:40000 with `payload`.
private func tcpFrame(payload: [UInt8] = [1, 2, 3], tagged: Bool = false) -> [UInt8] {
    var frame: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]
    if tagged { frame += [0x81, 0x00, 0x00, 0x05] }
    frame += [0x08, 0x00]
    var ip: [UInt8] = [0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2]
    ip.storeBigEndian16(UInt16(20 + 20 + payload.count), at: 2)
    ip.storeBigEndian16(InternetChecksum.of(ip), at: 10)
    var tcp: [UInt8] = [0x9C, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    tcp += payload
    var sum = InternetChecksum.pseudoHeader(
        source: 0x0A00_020F, destination: 0x0A00_0202, protocolNumber: 6, length: tcp.count)
    sum.add(tcp)
    tcp.storeBigEndian16(sum.value, at: 16)
    return frame + ip + tcp
}

@Suite("Wire: header views") struct HeaderViewTests {
    @Test("Ethernet looks through one tag; IPv4 and TCP read their fields; the checksum verifies")
    func ipv4TCP() throws {
        for tagged in [false, true] {
            let frame = tcpFrame(tagged: tagged)
            try frame.withUnsafeBytes { raw in
                let ethernet = try #require(EthernetHeader(raw))
                #expect(ethernet.etherType == EtherType.ipv4)
                #expect(ethernet.payloadOffset == (tagged ? 18 : 14))
                #expect(ethernet.vlanTag == (tagged ? 5 : nil))
                #expect(ethernet.source == MACAddress(rawValue: 0x0200_0000_0002))
                #expect(EthernetHeader(raw, lookingThroughVLAN: false)?.etherType == (tagged ? EtherType.vlan : 0x0800))
                let ip = try #require(IPv4Header(ethernet.payload))
                #expect(ip.headerLength == 20 && ip.totalLength == 43 && ip.protocolNumber == IPProtocolNumber.tcp)
                #expect(ip.source == 0x0A00_020F && ip.destination == 0x0A00_0202 && ip.dontFragment && !ip.isFragment)
                #expect(ip.hasValidChecksum)
                let segment = UnsafeRawBufferPointer(rebasing: ip.bytes[ip.headerLength..<ip.totalLength])
                let tcp = try #require(TCPHeader(segment))
                #expect(tcp.sourcePort == 40_000 && tcp.destinationPort == 80 && tcp.sequenceNumber == 1)
                #expect(tcp.acknowledgmentNumber == 2 && tcp.flags == [.psh, .ack])
                #expect(tcp.headerLength == 20 && tcp.options.isEmpty)
                var sum = InternetChecksum.pseudoHeader(
                    addresses: ip.addressBytes, protocolNumber: 6, length: segment.count)
                sum.add(segment)
                #expect(sum.value == 0)
            }
        }
    }

    @Test("short or inconsistent headers give nil instead of trapping")
    func hostile() {
        let frame = tcpFrame()
        for cut in 0..<frame.count {
            Array(frame[0..<cut]).withUnsafeBytes { raw in
                guard let ethernet = EthernetHeader(raw) else { return #expect(cut < 14) }
                guard let ip = IPv4Header(ethernet.payload) else { return #expect(cut < 34) }
                _ = (ip.totalLength, ip.source, ip.hasValidChecksum)
                _ = TCPHeader(UnsafeRawBufferPointer(rebasing: ip.bytes[ip.headerLength...]))?.options
            }
        }
        var badIHL = tcpFrame()
        badIHL[14] = 0x4F  // 60-byte header in a 43-byte packet
        badIHL.withUnsafeBytes { #expect(IPv4Header(UnsafeRawBufferPointer(rebasing: $0[14...])) == nil) }
        badIHL[14] = 0x44  // under 20
        badIHL.withUnsafeBytes { #expect(IPv4Header(UnsafeRawBufferPointer(rebasing: $0[14...])) == nil) }
        var badOffset = tcpFrame()
        badOffset[34 + 12] = 0xF0
        badOffset.withUnsafeBytes { #expect(TCPHeader(UnsafeRawBufferPointer(rebasing: $0[34...])) == nil) }
        [UInt8](repeating: 0, count: 7).withUnsafeBytes {
            #expect(UDPHeader($0) == nil)
            #expect(ICMPHeader($0) == nil)
            #expect(ARPHeader($0) == nil)
        }
    }

    @Test("IPv6 extension headers are walked to the upper layer, boundedly")
    func ipv6Walk() throws {
        func packet(_ extensions: [[UInt8]], last: UInt8) -> [UInt8] {
            var header: [UInt8] = [0x60, 0, 0, 0, 0, 0, extensions.isEmpty ? last : 60, 64]
            header += [UInt8](repeating: 0xFE, count: 32)
            var body: [UInt8] = []
            for (index, option) in extensions.enumerated() {
                body += [index == extensions.count - 1 ? last : 60] + option
            }
            header.storeBigEndian16(UInt16(body.count), at: 4)
            return header + body
        }
        let option: [UInt8] = [0, 1, 4, 0, 0, 0, 0]  // 8 bytes with the next-header byte
        try packet([option, option], last: 17).withUnsafeBytes { raw in
            let ip = try #require(IPv6Header(raw))
            #expect(ip.payloadLength == 16 && ip.nextHeader == 60 && ip.hopLimit == 64)
            let upper = try ip.walkExtensionHeaders(limit: 8)
            #expect(upper == IPv6Header.UpperLayer(protocolNumber: 17, offset: 56, nextHeaderFieldOffset: 48))
            #expect(throws: IPv6Header.ExtensionHeaderError.unsupported) { try ip.walkExtensionHeaders(limit: 1) }
        }
        try packet([option], last: 44).withUnsafeBytes { raw in
            let ip = try #require(IPv6Header(raw))
            #expect(throws: IPv6Header.ExtensionHeaderError.fragment) { try ip.walkExtensionHeaders(limit: 8) }
        }
        var long = packet([option], last: 6)
        long[41] = 200  // runs past the bytes
        try long.withUnsafeBytes { raw in
            let ip = try #require(IPv6Header(raw))
            #expect(throws: IPv6Header.ExtensionHeaderError.malformed) { try ip.walkExtensionHeaders(limit: 8) }
        }
        // A chain of 1000 destination-options headers stops at the limit.
        let chain = packet([[UInt8]](repeating: option, count: 1000), last: 6)
        try chain.withUnsafeBytes { raw in
            let ip = try #require(IPv6Header(raw))
            #expect(throws: IPv6Header.ExtensionHeaderError.unsupported) { try ip.walkExtensionHeaders(limit: 8) }
        }
    }
}

@Suite("Wire: virtio_net_hdr") struct VirtioNetHeaderCodecTests {
    @Test("the codec round-trips both lengths and refuses fewer than 10 bytes")
    func codec() {
        let header = VirtioNetHeader(
            flags: 1, gsoType: 0x81, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16,
            bufferCount: 3)
        let long = header.bytes(length: 12)
        #expect(long == [1, 0x81, 54, 0, 0xA8, 5, 34, 0, 16, 0, 3, 0])
        #expect(header.bytes() == Array(long[0..<10]))
        #expect(long.withUnsafeBytes { VirtioNetHeader($0) } == header)
        var short = header
        short.bufferCount = 0
        #expect(Array(long[0..<10]).withUnsafeBytes { VirtioNetHeader($0) } == short)
        #expect(Array(long[0..<9]).withUnsafeBytes { VirtioNetHeader($0) } == nil)
        var tiny = [UInt8](repeating: 0xEE, count: 3)
        tiny.withUnsafeMutableBytes { header.store(into: $0, length: 12) }
        #expect(tiny == [1, 0x81, 0xEE])
    }

    @Test("UDP segmentation is gso type 3 in the card's UFO form and 5 in the TAP's UDP_L4 form")
    func udpForms() {
        let metadata = FrameMetadata(
            checksum: ChecksumRequest(start: 34, offset: 6),
            segmentation: SegmentationRequest(kind: .udp, segmentSize: 1472, headerLength: 42))
        #expect(VirtioNetHeader(metadata, form: .ufo).gsoType == VirtioNetHeader.gsoUDP)
        #expect(VirtioNetHeader(metadata, form: .udpL4).gsoType == VirtioNetHeader.gsoUDPL4)
        #expect(VirtioNetHeader(metadata, form: .ufo).metadata(form: .ufo) == metadata)
        #expect(VirtioNetHeader(metadata, form: .udpL4).metadata(form: .udpL4) == metadata)
        #expect(VirtioNetHeader(metadata, form: .ufo).metadata(form: .udpL4) == metadata)
        #expect(VirtioNetHeader(metadata, form: .udpL4).metadata(form: .ufo) == nil)
        #expect(VirtioNetHeader.segmentationKind(ofGSOType: 4, form: .ufo) == .tcpIPv6)
        #expect(VirtioNetHeader.segmentationKind(ofGSOType: 9, form: .udpL4) == nil)
    }
}
