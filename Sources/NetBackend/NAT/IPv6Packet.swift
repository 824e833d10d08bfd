import NICCore

/// A parsed IPv6 packet: the fixed header, the extension headers walked (boundedly) to the upper-layer protocol.
struct IPv6Packet {
    var source: IPv6Address
    var destination: IPv6Address
    /// The fixed header and the extension headers as received.
    var header: [UInt8]
    /// The upper-layer payload, trimmed to the header's payload length.
    var payload: [UInt8]
    /// Where the extension headers end: the upper-layer protocol, and where in ``header`` the field naming it is.
    var upperLayer: IPv6Header.UpperLayer

    /// The upper-layer protocol after the extension headers.
    var nextHeader: UInt8 { upperLayer.protocolNumber }
    /// Where, from the start of ``header``, the field naming ``nextHeader`` is (for a parameter problem).
    var nextHeaderOffset: Int { upperLayer.nextHeaderFieldOffset }
    /// The hop limit.
    var hopLimit: UInt8 { header.withUnsafeBytes { raw in IPv6Header(raw)?.hopLimit ?? 0 } }

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
        guard offset >= 0, offset <= bytes.count else { throw .malformed }
        let result: Result<IPv6Packet, ParseError> = bytes.withUnsafeBytes { raw in
            guard let fixed = IPv6Header(UnsafeRawBufferPointer(rebasing: raw[offset...])) else {
                return .failure(.malformed)
            }
            let payloadLength = fixed.payloadLength
            // A payload length of 0 with a hop-by-hop header is a jumbogram (RFC 2675): not on an Ethernet link.
            guard payloadLength <= fixed.bytes.count - IPv6Header.size, payloadLength > 0 || fixed.nextHeader != 0,
                let ip = IPv6Header(
                    UnsafeRawBufferPointer(rebasing: fixed.bytes[0..<(IPv6Header.size + payloadLength)]))
            else { return .failure(.malformed) }
            do throws(IPv6Header.ExtensionHeaderError) {
                return .success(IPv6Packet(ip, try ip.walkExtensionHeaders(limit: Self.maximumExtensionHeaders)))
            } catch {
                switch error {
                case .malformed: return .failure(.malformed)
                case .fragment: return .failure(.fragment)
                case .unsupported: return .failure(.extensionHeader)
                }
            }
        }
        self = try result.get()
    }

    /// The packet `ip` heads (trimmed to its payload length), its upper layer at `upper`.
    private init(_ ip: IPv6Header, _ upper: IPv6Header.UpperLayer) {
        source = IPv6Address(ip.source)
        destination = IPv6Address(ip.destination)
        upperLayer = upper
        header = Array(ip.bytes[0..<upper.offset])
        payload = Array(ip.bytes[upper.offset...])
    }

    /// A 40-byte header and payload (no extension headers).
    static func build(
        source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payload: [UInt8], hopLimit: UInt8 = 64
    ) -> [UInt8] {
        var packet: [UInt8] = []
        packet.reserveCapacity(40 + payload.count)
        packet.appendBigEndian32(0x6000_0000)
        packet.appendBigEndian16(UInt16(truncatingIfNeeded: payload.count))
        packet.append(nextHeader)
        packet.append(hopLimit)
        packet += source.bytes
        packet += destination.bytes
        packet += payload
        return packet
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
