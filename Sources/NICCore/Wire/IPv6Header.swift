/// An IPv6 fixed header (RFC 8200): the version and the fixed header's fit are checked on creation, the payload
/// length is not checked against the bytes. `walkExtensionHeaders(limit:)` finds the upper layer.
public typealias IPv6Header = HeaderView<IPv6HeaderKind>

/// The IPv6 fixed header's checks.
public enum IPv6HeaderKind: FixedSizeHeaderKind {
    /// The fixed header's size.
    @inlinable public static var size: Int { 40 }

    /// Whether `bytes` start with version 6 and hold the whole fixed header.
    @inlinable
    public static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool { bytes.count >= size && bytes[0] >> 4 == 6 }
}

/// Where an IPv6 packet's extension headers end.
public struct IPv6UpperLayer: Hashable, Sendable {
    /// The upper-layer protocol.
    public var protocolNumber: UInt8
    /// Where, from the start of the header, the upper-layer message starts.
    public var offset: Int
    /// Where, from the start of the header, the field naming ``protocolNumber`` is (6, or inside the last extension
    /// header).
    public var nextHeaderFieldOffset: Int

    /// The upper layer found by a walk.
    @inlinable
    public init(protocolNumber: UInt8, offset: Int, nextHeaderFieldOffset: Int) {
        self.protocolNumber = protocolNumber
        self.offset = offset
        self.nextHeaderFieldOffset = nextHeaderFieldOffset
    }
}

/// Why an IPv6 packet's extension headers could not be walked.
public enum IPv6ExtensionHeaderError: Error, Hashable, Sendable {
    /// An extension header runs past the bytes.
    case malformed
    /// A fragment header.
    case fragment
    /// A routing header with segments left, a hop-by-hop header that is not first, or more than the limit.
    case unsupported
}

extension HeaderView where Kind == IPv6HeaderKind {
    /// Where the extension headers end.
    public typealias UpperLayer = IPv6UpperLayer
    /// Why the extension headers could not be walked.
    public typealias ExtensionHeaderError = IPv6ExtensionHeaderError

    /// The payload length field (extension headers and upper layer).
    @inlinable public var payloadLength: Int { Int(u16(4)) }
    /// The fixed header's next-header field.
    @inlinable public var nextHeader: UInt8 { bytes[6] }
    /// The hop limit.
    @inlinable public var hopLimit: UInt8 { bytes[7] }
    /// The source address's 16 bytes.
    @inlinable public var source: UnsafeRawBufferPointer { slice(8..<24) }
    /// The destination address's 16 bytes.
    @inlinable public var destination: UnsafeRawBufferPointer { slice(24..<40) }
    /// Both addresses as they stand (32 bytes, for the pseudo-header).
    @inlinable public var addressBytes: UnsafeRawBufferPointer { slice(8..<40) }

    /// Walks the hop-by-hop, routing and destination-options headers (at most `limit` of them) to the upper layer,
    /// within `bytes`.
    @inlinable
    public func walkExtensionHeaders(limit: Int) throws(ExtensionHeaderError) -> UpperLayer {
        var next = bytes[6]
        var fieldOffset = 6
        var position = Self.size
        var walked = 0
        while true {
            switch next {
            case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                guard next != IPProtocolNumber.hopByHop || walked == 0 else { throw .unsupported }
                guard walked < limit else { throw .unsupported }
                guard position <= bytes.count - 8 else { throw .malformed }
                let length = (Int(bytes[position + 1]) + 1) * 8
                guard length <= bytes.count - position else { throw .malformed }
                if next == IPProtocolNumber.routing, bytes[position + 3] != 0 { throw .unsupported }
                next = bytes[position]
                fieldOffset = position
                position += length
                walked += 1
            case IPProtocolNumber.fragment:
                throw .fragment
            default:
                return UpperLayer(protocolNumber: next, offset: position, nextHeaderFieldOffset: fieldOffset)
            }
        }
    }
}
