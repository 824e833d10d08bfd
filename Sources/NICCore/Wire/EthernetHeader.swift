/// EtherTypes the cards and backends look at.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    /// An 802.1Q tag follows the source address.
    public static let vlan: UInt16 = 0x8100
    /// An 802.1ad (QinQ) service tag follows the source address.
    public static let serviceVLAN: UInt16 = 0x88A8
    public static let ipv6: UInt16 = 0x86DD
}

/// IP protocol numbers (and IPv6 next-header values) the cards and backends look at.
public enum IPProtocolNumber {
    public static let hopByHop: UInt8 = 0
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let routing: UInt8 = 43
    public static let fragment: UInt8 = 44
    public static let icmpv6: UInt8 = 58
    public static let noNextHeader: UInt8 = 59
    public static let destinationOptions: UInt8 = 60
}

/// An Ethernet II header over borrowed frame bytes, with at most one VLAN tag (802.1Q or 802.1ad) looked through.
public struct EthernetHeader {
    /// The frame.
    public let frame: UnsafeRawBufferPointer
    /// The EtherType after the tag, if any.
    public let etherType: UInt16
    /// Where the network header starts: 14, or 18 behind a tag.
    public let payloadOffset: Int

    /// The untagged header size.
    public static let size = 14

    /// Reads the header at the start of `frame`; `nil` when the frame is shorter than the header (and its tag).
    /// With `lookingThroughVLAN` false a tagged frame's EtherType is the tag's.
    @inlinable
    public init?(_ frame: UnsafeRawBufferPointer, lookingThroughVLAN: Bool = true) {
        guard var type = frame.load(bigEndian: UInt16.self, at: 12) else { return nil }
        var offset = 14
        if lookingThroughVLAN, type == EtherType.vlan || type == EtherType.serviceVLAN {
            guard let inner = frame.load(bigEndian: UInt16.self, at: 16) else { return nil }
            type = inner
            offset = 18
        }
        self.frame = frame
        self.etherType = type
        self.payloadOffset = offset
    }

    /// The destination address.
    @inlinable
    public var destination: MACAddress { MACAddress(in: frame, at: 0) ?? MACAddress(rawValue: 0) }

    /// The source address.
    @inlinable
    public var source: MACAddress { MACAddress(in: frame, at: 6) ?? MACAddress(rawValue: 0) }

    /// The tag control field when the frame is tagged.
    @inlinable
    public var vlanTag: UInt16? { payloadOffset == 18 ? frame.load(bigEndian: UInt16.self, at: 14) : nil }

    /// The bytes after the header (and tag).
    @inlinable
    public var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: frame[payloadOffset...]) }
}

/// An ARP packet for IPv4 over Ethernet (RFC 826; hardware type 1, protocol 0x0800, lengths 6 and 4).
public typealias ARPHeader = HeaderView<ARPHeaderKind>

/// The ARP packet's checks.
public enum ARPHeaderKind: FixedSizeHeaderKind {
    /// The packet size.
    @inlinable public static var size: Int { 28 }

    /// Whether `bytes` hold a whole packet for IPv4 over Ethernet.
    @inlinable
    public static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= size && bytes.load(bigEndian: UInt16.self, at: 0) == 1
            && bytes.load(bigEndian: UInt16.self, at: 2) == EtherType.ipv4 && bytes[4] == 6 && bytes[5] == 4
    }
}

/// ARP operations (RFC 826).
public enum ARPOperation: UInt16, Sendable {
    /// Who has this address?
    case request = 1
    /// This address is at this MAC.
    case reply
}

extension HeaderView where Kind == ARPHeaderKind {
    /// Request or reply; `nil` for another operation.
    @inlinable public var operation: ARPOperation? { ARPOperation(rawValue: u16(6)) }
    /// The sender's MAC address.
    @inlinable public var senderHardwareAddress: MACAddress { mac(8) }
    /// The sender's IPv4 address.
    @inlinable public var senderProtocolAddress: UInt32 { u32(14) }
    /// The target's MAC address.
    @inlinable public var targetHardwareAddress: MACAddress { mac(18) }
    /// The target's IPv4 address.
    @inlinable public var targetProtocolAddress: UInt32 { u32(24) }
}
