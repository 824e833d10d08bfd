import NICCore

/// An IPv4 packet from the guest: its header as received, read through the wire layer's ``IPv4Header``, and its
/// payload.
struct IPv4Packet {
    var source: IPv4Address
    var destination: IPv4Address
    /// The header as received, options included (a valid IPv4 header: the parse checked it).
    var header: [UInt8]
    /// The payload, trimmed to the header's total length.
    var payload: [UInt8]
    /// Whether this is a datagram reassembled from fragments (``header`` is the first fragment's).
    var reassembled = false

    /// A field of ``header`` through the wire view.
    @inline(__always)
    private func field<Value>(_ read: (IPv4Header) -> Value, else fallback: Value) -> Value {
        header.withUnsafeBytes { raw in IPv4Header(raw).map(read) ?? fallback }
    }

    /// The payload's protocol.
    var proto: UInt8 { field({ $0.protocolNumber }, else: 0) }
    /// Time to live.
    var ttl: UInt8 { field({ $0.timeToLive }, else: 0) }
    /// The identification field.
    var identification: UInt16 { field({ $0.identification }, else: 0) }
    /// Don't fragment.
    var dontFragment: Bool { field({ $0.dontFragment }, else: false) }
    /// More fragments (never for a reassembled datagram).
    var moreFragments: Bool { !reassembled && field({ $0.moreFragments }, else: false) }
    /// Fragment offset in bytes.
    var fragmentOffset: Int { field({ $0.fragmentOffset }, else: 0) }
    /// Whether this is a fragment (more fragments, or an offset).
    var isFragment: Bool { moreFragments || fragmentOffset != 0 }

    /// Why a packet did not parse.
    enum ParseError: Error {
        case malformed, checksum
    }

    /// Parses the IPv4 packet in `bytes` from `offset` (after the Ethernet header). Trailing bytes past the total
    /// length (Ethernet padding) are ignored.
    init(parsing bytes: [UInt8], at offset: Int) throws(ParseError) {
        guard offset >= 0, offset <= bytes.count else { throw .malformed }
        let result: Result<IPv4Packet, ParseError> = bytes.withUnsafeBytes { raw in
            guard let ip = IPv4Header(UnsafeRawBufferPointer(rebasing: raw[offset...])),
                ip.totalLength >= ip.headerLength, ip.totalLength <= ip.bytes.count
            else { return .failure(.malformed) }
            guard ip.hasValidChecksum else { return .failure(.checksum) }
            return .success(IPv4Packet(ip))
        }
        self = try result.get()
    }

    /// The packet `ip` heads (its total length checked).
    private init(_ ip: IPv4Header) {
        header = Array(ip.header)
        payload = Array(ip.bytes[ip.headerLength..<ip.totalLength])
        (source, destination) = (IPv4Address(rawValue: ip.source), IPv4Address(rawValue: ip.destination))
    }

    /// A 20-byte header and payload.
    static func build(
        source: IPv4Address, destination: IPv4Address, proto: UInt8, payload: [UInt8], ttl: UInt8 = 64,
        identification: UInt16 = 0, dontFragment: Bool = false, moreFragments: Bool = false, fragmentOffset: Int = 0,
        tos: UInt8 = 0
    ) -> [UInt8] {
        var packet: [UInt8] = []
        packet.reserveCapacity(20 + payload.count)
        packet.append(0x45)
        packet.append(tos)
        packet.appendBigEndian16(UInt16(truncatingIfNeeded: 20 + payload.count))
        packet.appendBigEndian16(identification)
        var flags = UInt16(truncatingIfNeeded: fragmentOffset / 8) & 0x1FFF
        if dontFragment { flags |= 0x4000 }
        if moreFragments { flags |= 0x2000 }
        packet.appendBigEndian16(flags)
        packet.append(ttl)
        packet.append(proto)
        packet.appendBigEndian16(0)
        packet += source.bytes
        packet += destination.bytes
        var checksum = InternetChecksum()
        checksum.add(packet)
        packet.storeBigEndian16(checksum.value, at: 10)
        packet += payload
        return packet
    }
}

/// An Ethernet frame, padded to the 60-byte minimum.
func ethernetFrame(to destination: MACAddress, from source: MACAddress, type: UInt16, payload: [UInt8]) -> [UInt8] {
    var frame: [UInt8] = []
    frame.reserveCapacity(max(60, 14 + payload.count))
    frame += destination.bytes
    frame += source.bytes
    frame.appendBigEndian16(type)
    frame += payload
    if frame.count < 60 { frame += [UInt8](repeating: 0, count: 60 - frame.count) }
    return frame
}

/// Whether a pending checksum (the virtio `NEEDS_CSUM` convention) points inside a frame of `frameLength` bytes.
func checksumRequestFits(_ request: ChecksumRequest, frameLength: Int) -> Bool {
    let start = request.start
    let field = start &+ request.offset
    return start >= 0 && start < frameLength && request.offset >= 0 && field >= start && field <= frameLength - 2
}

/// Builders for the transport headers the NAT sends (the tests build the guest's side with them too).
enum TransportSegment {
    /// A TCP segment from `source` to `destination` with `options` padded to 32 bits and its checksum filled.
    static func tcp(
        from source: IPv4Endpoint, to destination: IPv4Endpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: TCPFlags, window: UInt16, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        tcp(
            from: IPEndpoint(source), to: IPEndpoint(destination), sequence: sequence, acknowledgment: acknowledgment,
            flags: flags, window: window, options: options, payload: payload)
    }

    /// A TCP segment between endpoints of either family (both the same) with its checksum filled.
    static func tcp(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: TCPFlags, window: UInt16, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        var padded = options
        while padded.count % 4 != 0 { padded.append(0) }
        var segment: [UInt8] = []
        segment.reserveCapacity(20 + padded.count + payload.count)
        segment.appendBigEndian16(source.port)
        segment.appendBigEndian16(destination.port)
        segment.appendBigEndian32(sequence)
        segment.appendBigEndian32(acknowledgment)
        segment.append(UInt8((20 + padded.count) / 4) << 4)
        segment.append(flags.rawValue)
        segment.appendBigEndian16(window)
        segment.appendBigEndian16(0)
        segment.appendBigEndian16(0)
        segment += padded
        segment += payload
        guard
            var sum = pseudoHeaderSum(
                source: source.address, destination: destination.address, proto: IPProtocolNumber.tcp,
                length: segment.count)
        else { return segment }
        sum.add(segment)
        segment.storeBigEndian16(sum.value, at: 16)
        return segment
    }

    /// A UDP datagram from `source` to `destination` with its checksum filled (0 sent as 0xFFFF).
    static func udp(from source: IPv4Endpoint, to destination: IPv4Endpoint, payload: [UInt8]) -> [UInt8] {
        udp(from: IPEndpoint(source), to: IPEndpoint(destination), payload: payload)
    }

    /// A UDP datagram between endpoints of either family (both the same) with its checksum filled.
    static func udp(from source: IPEndpoint, to destination: IPEndpoint, payload: [UInt8]) -> [UInt8] {
        var datagram: [UInt8] = []
        datagram.reserveCapacity(8 + payload.count)
        datagram.appendBigEndian16(source.port)
        datagram.appendBigEndian16(destination.port)
        datagram.appendBigEndian16(UInt16(truncatingIfNeeded: 8 + payload.count))
        datagram.appendBigEndian16(0)
        datagram += payload
        let sum = transportChecksum(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.udp, segment: datagram)
        datagram.storeBigEndian16(sum == 0 ? 0xFFFF : sum ?? 0, at: 6)
        return datagram
    }
}
