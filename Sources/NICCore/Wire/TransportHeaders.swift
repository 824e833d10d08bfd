/// A TCP header (RFC 9293): the data offset is checked on creation.
public typealias TCPHeader = HeaderView<TCPHeaderKind>

/// The TCP header's checks.
public enum TCPHeaderKind: HeaderKind {
    /// Whether `bytes` start with a data offset of at least 5 words and hold the header with its options.
    @inlinable
    public static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= TCPHeader.minimumSize else { return false }
        let length = Int(bytes[12] >> 4) &* 4
        return length >= TCPHeader.minimumSize && length <= bytes.count
    }
}

extension HeaderView where Kind == TCPHeaderKind {
    /// The size of a header without options.
    @inlinable public static var minimumSize: Int { 20 }
    /// The checksum field's offset in the header.
    @inlinable public static var checksumOffset: Int { 16 }

    /// The source port.
    @inlinable public var sourcePort: UInt16 { u16(0) }
    /// The destination port.
    @inlinable public var destinationPort: UInt16 { u16(2) }
    /// The sequence number.
    @inlinable public var sequenceNumber: UInt32 { u32(4) }
    /// The acknowledgment number.
    @inlinable public var acknowledgmentNumber: UInt32 { u32(8) }
    /// The header length in bytes, options included.
    @inlinable public var headerLength: Int { Int(bytes[12] >> 4) &* 4 }
    /// The flags (CWR ECE URG ACK PSH RST SYN FIN).
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes[13]) }
    /// The receive window.
    @inlinable public var window: UInt16 { u16(14) }
    /// The checksum field.
    @inlinable public var checksum: UInt16 { u16(16) }
    /// The urgent pointer.
    @inlinable public var urgentPointer: UInt16 { u16(18) }
    /// The options.
    @inlinable public var options: UnsafeRawBufferPointer { slice(20..<headerLength) }
}

/// The flag byte of a TCP header.
public struct TCPFlags: OptionSet, Hashable, Sendable {
    /// The byte as it stands in the header.
    public var rawValue: UInt8

    /// The flags in `rawValue`.
    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// No more data from the sender.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    /// Synchronize sequence numbers.
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    /// Reset the connection.
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    /// Push.
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    /// The acknowledgment field is significant.
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    /// The urgent pointer is significant.
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    /// ECN echo.
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    /// Congestion window reduced.
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
}

/// A UDP header (RFC 768).
public typealias UDPHeader = HeaderView<UDPHeaderKind>

/// The UDP header's checks.
public enum UDPHeaderKind: FixedSizeHeaderKind {
    /// The header size.
    @inlinable public static var size: Int { 8 }
}

extension HeaderView where Kind == UDPHeaderKind {
    /// The checksum field's offset in the header.
    @inlinable public static var checksumOffset: Int { 6 }

    /// The source port.
    @inlinable public var sourcePort: UInt16 { u16(0) }
    /// The destination port.
    @inlinable public var destinationPort: UInt16 { u16(2) }
    /// The length field: header and payload.
    @inlinable public var length: Int { Int(u16(4)) }
    /// The checksum field (0: none, over IPv4).
    @inlinable public var checksum: UInt16 { u16(6) }
}

/// An ICMP or ICMPv6 header: type, code, checksum and the 4 type-specific bytes.
public typealias ICMPHeader = HeaderView<ICMPHeaderKind>

/// The ICMP header's checks.
public enum ICMPHeaderKind: FixedSizeHeaderKind {
    /// The header size.
    @inlinable public static var size: Int { 8 }
}

extension HeaderView where Kind == ICMPHeaderKind {
    /// The message type.
    @inlinable public var type: UInt8 { bytes[0] }
    /// The code.
    @inlinable public var code: UInt8 { bytes[1] }
    /// The checksum field.
    @inlinable public var checksum: UInt16 { u16(2) }
    /// The echo identifier (bytes 4–5 of an echo request or reply).
    @inlinable public var identifier: UInt16 { u16(4) }
    /// The echo sequence number (bytes 6–7 of an echo request or reply).
    @inlinable public var sequenceNumber: UInt16 { u16(6) }
}

/// ICMPv6 message types (RFC 4443, RFC 4861) the cards and backends look at.
public enum ICMPv6Type: UInt8, Sendable {
    /// Destination unreachable: the first error type.
    case destinationUnreachable = 1
    /// The other errors: packet too big, time exceeded, parameter problem.
    case packetTooBig, timeExceeded, parameterProblem
    /// Echo request.
    case echoRequest = 128
    /// Echo reply.
    case echoReply
    /// Router solicitation: the first NDP message.
    case routerSolicitation = 133
    /// The other NDP messages: router advertisement, neighbor solicitation, neighbor advertisement.
    case routerAdvertisement, neighborSolicitation, neighborAdvertisement
}

/// Well-known UDP and TCP ports the backends serve or look for.
public enum WellKnownPort: UInt16, Sendable {
    /// DNS.
    case dns = 53
    /// DHCP (BOOTP) server.
    case dhcpServer = 67
    /// DHCP client, TFTP.
    case dhcpClient, tftp
    /// DHCPv6 client.
    case dhcpv6Client = 546
    /// DHCPv6 server.
    case dhcpv6Server
}
