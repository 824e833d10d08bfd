/// Where a frame's network and TCP or UDP headers lie: what segmentation and checksum offload work from. Ethernet
/// with at most one VLAN tag, IPv4 (options allowed) or IPv6 without extension headers.
public struct TransportLayout: Hashable, Sendable {
    /// Where the IP header starts.
    public var network: Int
    /// Where the TCP or UDP header starts.
    public var transport: Int
    /// Whether the network header is IPv6.
    public var isIPv6: Bool
    /// Where the TCP (data offset included) or UDP header ends: the headers every segment repeats.
    public var headerEnd: Int

    /// Why a frame has no layout.
    public enum ParseError: Error, Hashable, Sendable {
        /// Lengths point outside the frame.
        case malformed
        /// Not IPv4 or IPv6 (of the family asked for) carrying the protocol asked for directly.
        case unsupported
    }

    /// Finds the headers of `frame`, which must carry `protocolNumber` (TCP or UDP) directly over IPv6 when `ipv6`
    /// is true, IPv4 when false, either when `nil`.
    @inlinable
    public init(_ frame: UnsafeRawBufferPointer, protocolNumber: UInt8, ipv6: Bool?) throws(ParseError) {
        guard let ethernet = EthernetHeader(frame) else { throw .malformed }
        let network = ethernet.payloadOffset
        let packet = ethernet.payload
        switch ethernet.etherType {
        case EtherType.ipv4:
            guard ipv6 != true, packet.count >= IPv4Header.minimumSize, packet[0] >> 4 == 4 else { throw .unsupported }
            guard let ip = IPv4Header(packet) else { throw .malformed }
            guard ip.protocolNumber == protocolNumber else { throw .unsupported }
            transport = network + ip.headerLength
            isIPv6 = false
        case EtherType.ipv6:
            guard ipv6 != false, let ip = IPv6Header(packet), ip.nextHeader == protocolNumber else {
                throw .unsupported
            }
            transport = network + IPv6Header.size
            isIPv6 = true
        default: throw .unsupported
        }
        self.network = network
        var end = transport + UDPHeader.size
        if protocolNumber == IPProtocolNumber.tcp {
            guard frame.count >= transport + TCPHeader.minimumSize,
                let tcp = TCPHeader(UnsafeRawBufferPointer(rebasing: frame[transport...]))
            else { throw .malformed }
            end = transport + tcp.headerLength
        }
        guard frame.count >= end else { throw .malformed }
        headerEnd = end
    }

    /// The source and destination address bytes in the frame (what the pseudo-header sums).
    @inlinable
    public var addressRange: Range<Int> {
        isIPv6 ? (network + 8)..<(network + 40) : (network + 12)..<(network + 20)
    }
}
