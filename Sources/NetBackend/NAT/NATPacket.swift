import NICCore

/// Loads and stores that never trap: an index outside the array reads 0 and writes nothing. Parsers check lengths
/// first; these keep a mistake in a check from becoming a crash.
extension Array where Element == UInt8 {
    func u8(_ index: Int) -> UInt8 { index >= 0 && index < count ? self[index] : 0 }
    func u16(_ index: Int) -> UInt16 { UInt16(u8(index)) << 8 | UInt16(u8(index &+ 1)) }
    func u32(_ index: Int) -> UInt32 { UInt32(u16(index)) << 16 | UInt32(u16(index &+ 2)) }

    mutating func put16(_ value: UInt16, at index: Int) {
        guard index >= 0, index < count - 1 else { return }
        self[index] = UInt8(truncatingIfNeeded: value >> 8)
        self[index + 1] = UInt8(truncatingIfNeeded: value)
    }

    mutating func put32(_ value: UInt32, at index: Int) {
        put16(UInt16(truncatingIfNeeded: value >> 16), at: index)
        put16(UInt16(truncatingIfNeeded: value), at: index &+ 2)
    }

    /// `count` bytes from `start`, clamped to the array.
    func bytes(from start: Int, count length: Int) -> [UInt8] {
        let lower = Swift.min(Swift.max(0, start), count)
        let upper = Swift.min(count, lower + Swift.max(0, Swift.min(length, count)))
        return Array(self[lower..<upper])
    }
}

/// Appending big-endian numbers.
extension Array where Element == UInt8 {
    mutating func append16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    mutating func append32(_ value: UInt32) {
        append16(UInt16(truncatingIfNeeded: value >> 16))
        append16(UInt16(truncatingIfNeeded: value))
    }
}

/// EtherTypes and IP protocol numbers the NAT handles.
enum EtherType {
    static let ipv4: UInt16 = 0x0800
    static let arp: UInt16 = 0x0806
    static let vlan: UInt16 = 0x8100
    static let ipv6: UInt16 = 0x86DD
}

enum IPProtocolNumber {
    static let icmp: UInt8 = 1
    static let tcp: UInt8 = 6
    static let udp: UInt8 = 17
}

/// A parsed IPv4 header with its payload.
struct IPv4Packet {
    var source: IPv4Address
    var destination: IPv4Address
    var proto: UInt8
    var ttl: UInt8
    var tos: UInt8
    var identification: UInt16
    var dontFragment: Bool
    var moreFragments: Bool
    /// Fragment offset in bytes.
    var fragmentOffset: Int
    /// The header as received, options included.
    var header: [UInt8]
    /// The payload, trimmed to the header's total length.
    var payload: [UInt8]

    var isFragment: Bool { moreFragments || fragmentOffset != 0 }

    /// Why a packet did not parse.
    enum ParseError: Error {
        case malformed, checksum
    }

    /// Parses the IPv4 packet in `bytes` from `offset` (after the Ethernet header). Trailing bytes past the total
    /// length (Ethernet padding) are ignored.
    init(parsing bytes: [UInt8], at offset: Int) throws(ParseError) {
        let available = bytes.count - offset
        guard offset >= 0, available >= 20, bytes.u8(offset) >> 4 == 4 else { throw .malformed }
        let headerLength = Int(bytes.u8(offset) & 0x0F) * 4
        let totalLength = Int(bytes.u16(offset + 2))
        guard headerLength >= 20, totalLength >= headerLength, totalLength <= available else { throw .malformed }
        header = Array(bytes[offset..<(offset + headerLength)])
        var checksum = InternetChecksum()
        checksum.add(header)
        guard checksum.value == 0 else { throw .checksum }
        payload = Array(bytes[(offset + headerLength)..<(offset + totalLength)])
        tos = header.u8(1)
        identification = header.u16(4)
        let flags = header.u16(6)
        dontFragment = flags & 0x4000 != 0
        moreFragments = flags & 0x2000 != 0
        fragmentOffset = Int(flags & 0x1FFF) * 8
        ttl = header.u8(8)
        proto = header.u8(9)
        source = IPv4Address(rawValue: header.u32(12))
        destination = IPv4Address(rawValue: header.u32(16))
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
        packet.append16(UInt16(truncatingIfNeeded: 20 + payload.count))
        packet.append16(identification)
        var flags = UInt16(truncatingIfNeeded: fragmentOffset / 8) & 0x1FFF
        if dontFragment { flags |= 0x4000 }
        if moreFragments { flags |= 0x2000 }
        packet.append16(flags)
        packet.append(ttl)
        packet.append(proto)
        packet.append16(0)
        packet += source.bytes
        packet += destination.bytes
        var checksum = InternetChecksum()
        checksum.add(packet)
        packet.put16(checksum.value, at: 10)
        packet += payload
        return packet
    }
}

/// The TCP/UDP checksum over the IPv4 pseudo-header and `segment`.
func transportChecksum(source: IPv4Address, destination: IPv4Address, proto: UInt8, segment: [UInt8]) -> UInt16 {
    var checksum = pseudoHeaderSum(source: source, destination: destination, proto: proto, length: segment.count)
    checksum.add(segment)
    return checksum.value
}

/// The sum over the IPv4 pseudo-header of a `length`-byte segment.
func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, proto: UInt8, length: Int) -> InternetChecksum {
    var checksum = InternetChecksum()
    checksum.add(word: UInt16(truncatingIfNeeded: source.rawValue >> 16))
    checksum.add(word: UInt16(truncatingIfNeeded: source.rawValue))
    checksum.add(word: UInt16(truncatingIfNeeded: destination.rawValue >> 16))
    checksum.add(word: UInt16(truncatingIfNeeded: destination.rawValue))
    checksum.add(word: UInt16(proto))
    checksum.add(word: UInt16(truncatingIfNeeded: length))
    return checksum
}

/// An Ethernet frame, padded to the 60-byte minimum.
func ethernetFrame(to destination: MACAddress, from source: MACAddress, type: UInt16, payload: [UInt8]) -> [UInt8] {
    var frame: [UInt8] = []
    frame.reserveCapacity(max(60, 14 + payload.count))
    frame += destination.bytes
    frame += source.bytes
    frame.append16(type)
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
        flags: UInt8, window: UInt16, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        tcp(
            from: IPEndpoint(source), to: IPEndpoint(destination), sequence: sequence, acknowledgment: acknowledgment,
            flags: flags, window: window, options: options, payload: payload)
    }

    /// A TCP segment between endpoints of either family (both the same) with its checksum filled.
    static func tcp(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: UInt8, window: UInt16, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        var padded = options
        while padded.count % 4 != 0 { padded.append(0) }
        var segment: [UInt8] = []
        segment.reserveCapacity(20 + padded.count + payload.count)
        segment.append16(source.port)
        segment.append16(destination.port)
        segment.append32(sequence)
        segment.append32(acknowledgment)
        segment.append(UInt8((20 + padded.count) / 4) << 4)
        segment.append(flags)
        segment.append16(window)
        segment.append16(0)
        segment.append16(0)
        segment += padded
        segment += payload
        guard
            var sum = pseudoHeaderSum(
                source: source.address, destination: destination.address, proto: IPProtocolNumber.tcp,
                length: segment.count)
        else { return segment }
        sum.add(segment)
        segment.put16(sum.value, at: 16)
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
        datagram.append16(source.port)
        datagram.append16(destination.port)
        datagram.append16(UInt16(truncatingIfNeeded: 8 + payload.count))
        datagram.append16(0)
        datagram += payload
        let sum = transportChecksum(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.udp, segment: datagram)
        datagram.put16(sum == 0 ? 0xFFFF : sum ?? 0, at: 6)
        return datagram
    }
}
