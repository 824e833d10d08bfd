import NICCore

extension IPProtocolNumber {
    static let icmpv6: UInt8 = 58
    static let hopByHop: UInt8 = 0
    static let routing: UInt8 = 43
    static let fragment: UInt8 = 44
    static let destinationOptions: UInt8 = 60
    static let noNextHeader: UInt8 = 59
}

/// A parsed IPv6 packet: the fixed header, the extension headers walked (boundedly) to the upper-layer protocol.
struct IPv6Packet {
    var source: IPv6Address
    var destination: IPv6Address
    /// The upper-layer protocol after the extension headers.
    var nextHeader: UInt8
    var hopLimit: UInt8
    /// The fixed header and the extension headers as received.
    var header: [UInt8]
    /// The upper-layer payload, trimmed to the header's payload length.
    var payload: [UInt8]
    /// Where, from the start of ``header``, the field naming ``nextHeader`` is (for a parameter problem).
    var nextHeaderOffset: Int

    /// The most extension headers walked before the packet is dropped.
    static let maximumExtensionHeaders = 8

    /// Why a packet did not parse.
    enum ParseError: Error {
        /// Too short, a payload length that runs past the frame, an extension header that runs past the payload,
        /// or a jumbogram.
        case malformed
        /// A fragment header: the NAT does not reassemble IPv6.
        case fragment
        /// A routing header with segments left, or more extension headers than ``maximumExtensionHeaders``.
        case extensionHeader
    }

    /// Parses the IPv6 packet in `bytes` from `offset`. Bytes past the payload length (Ethernet padding) are ignored.
    init(parsing bytes: [UInt8], at offset: Int) throws(ParseError) {
        let available = bytes.count - offset
        guard offset >= 0, available >= 40, bytes.u8(offset) >> 4 == 6 else { throw .malformed }
        let payloadLength = Int(bytes.u16(offset + 4))
        // A payload length of 0 with a hop-by-hop header is a jumbogram (RFC 2675): not on an Ethernet link.
        guard payloadLength <= available - 40, payloadLength > 0 || bytes.u8(offset + 6) != 0 else {
            throw .malformed
        }
        let packet = Array(bytes[offset..<(offset + 40 + payloadLength)])
        source = IPv6Address(in: packet, at: 8) ?? .any
        destination = IPv6Address(in: packet, at: 24) ?? .any
        hopLimit = packet[7]
        var next = packet[6]
        var fieldOffset = 6
        var position = 40
        var walked = 0
        while true {
            switch next {
            case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                guard next != IPProtocolNumber.hopByHop || walked == 0 else { throw .extensionHeader }
                guard walked < Self.maximumExtensionHeaders else { throw .extensionHeader }
                guard position + 8 <= packet.count else { throw .malformed }
                let length = (Int(packet[position + 1]) + 1) * 8
                guard position + length <= packet.count else { throw .malformed }
                if next == IPProtocolNumber.routing, packet[position + 3] != 0 { throw .extensionHeader }
                next = packet[position]
                fieldOffset = position
                position += length
                walked += 1
                continue
            case IPProtocolNumber.fragment:
                throw .fragment
            default:
                break
            }
            break
        }
        nextHeader = next
        nextHeaderOffset = fieldOffset
        header = Array(packet[0..<position])
        payload = Array(packet[position...])
    }

    /// A 40-byte header and payload (no extension headers).
    static func build(
        source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payload: [UInt8], hopLimit: UInt8 = 64
    ) -> [UInt8] {
        var packet: [UInt8] = []
        packet.reserveCapacity(40 + payload.count)
        packet.append32(0x6000_0000)
        packet.append16(UInt16(truncatingIfNeeded: payload.count))
        packet.append(nextHeader)
        packet.append(hopLimit)
        packet += source.bytes
        packet += destination.bytes
        packet += payload
        return packet
    }
}

/// The checksum of an upper-layer message over the IPv6 pseudo-header (RFC 8200 8.1) and `segment`.
func transportChecksum(source: IPv6Address, destination: IPv6Address, proto: UInt8, segment: [UInt8]) -> UInt16 {
    var checksum = pseudoHeaderSum(source: source, destination: destination, proto: proto, length: segment.count)
    checksum.add(segment)
    return checksum.value
}

/// The sum over the IPv6 pseudo-header of a `length`-byte upper-layer message.
func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address, proto: UInt8, length: Int) -> InternetChecksum {
    var checksum = InternetChecksum()
    checksum.add(source.bytes)
    checksum.add(destination.bytes)
    checksum.add(word: UInt16(truncatingIfNeeded: length >> 16))
    checksum.add(word: UInt16(truncatingIfNeeded: length))
    checksum.add(word: UInt16(proto))
    return checksum
}

/// The pseudo-header sum of either family; `nil` when the two addresses' families differ.
func pseudoHeaderSum(source: IPAddress, destination: IPAddress, proto: UInt8, length: Int) -> InternetChecksum? {
    switch (source, destination) {
    case (.v4(let from), .v4(let to)): pseudoHeaderSum(source: from, destination: to, proto: proto, length: length)
    case (.v6(let from), .v6(let to)): pseudoHeaderSum(source: from, destination: to, proto: proto, length: length)
    default: nil
    }
}

/// The TCP/UDP checksum over the pseudo-header of either family; `nil` when the two addresses' families differ.
func transportChecksum(source: IPAddress, destination: IPAddress, proto: UInt8, segment: [UInt8]) -> UInt16? {
    switch (source, destination) {
    case (.v4(let from), .v4(let to)):
        return transportChecksum(source: from, destination: to, proto: proto, segment: segment)
    case (.v6(let from), .v6(let to)):
        return transportChecksum(source: from, destination: to, proto: proto, segment: segment)
    default:
        return nil
    }
}

/// A packet from the guest of either family, as the TCP, UDP and ICMP handlers see it.
enum IPPacket {
    case v4(IPv4Packet)
    case v6(IPv6Packet)

    var source: IPAddress {
        switch self {
        case .v4(let packet): return .v4(packet.source)
        case .v6(let packet): return .v6(packet.source)
        }
    }

    var destination: IPAddress {
        switch self {
        case .v4(let packet): return .v4(packet.destination)
        case .v6(let packet): return .v6(packet.destination)
        }
    }

    var payload: [UInt8] {
        switch self {
        case .v4(let packet): return packet.payload
        case .v6(let packet): return packet.payload
        }
    }

    var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The packet with only the first `count` payload bytes (what an ICMP error about it needs).
    func truncated(_ count: Int) -> IPPacket {
        switch self {
        case .v4(var packet):
            packet.payload = Array(packet.payload.prefix(count))
            return .v4(packet)
        case .v6(var packet):
            packet.payload = Array(packet.payload.prefix(count))
            return .v6(packet)
        }
    }
}
