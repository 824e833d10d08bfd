/// An IPv4 header (RFC 791): the version, header length and header length's fit are checked on creation. The total
/// length is not checked against the bytes.
public typealias IPv4Header = HeaderView<IPv4HeaderKind>

/// The IPv4 header's checks.
public enum IPv4HeaderKind: HeaderKind {
    /// Whether `bytes` start with version 4, a header length of at least 20 and the whole header (options included).
    @inlinable
    public static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= IPv4Header.minimumSize, bytes[0] >> 4 == 4 else { return false }
        let length = Int(bytes[0] & 0x0F) &* 4
        return length >= IPv4Header.minimumSize && length <= bytes.count
    }
}

extension HeaderView where Kind == IPv4HeaderKind {
    /// The size of a header without options.
    @inlinable public static var minimumSize: Int { 20 }

    /// The header length in bytes, options included (IHL × 4).
    @inlinable public var headerLength: Int { Int(bytes[0] & 0x0F) &* 4 }
    /// The type-of-service (DSCP and ECN) byte.
    @inlinable public var typeOfService: UInt8 { bytes[1] }
    /// The total length field: header and payload.
    @inlinable public var totalLength: Int { Int(u16(2)) }
    /// The identification field.
    @inlinable public var identification: UInt16 { u16(4) }
    /// The flags and fragment offset field.
    @inlinable public var flagsAndFragmentOffset: UInt16 { u16(6) }
    /// Don't fragment.
    @inlinable public var dontFragment: Bool { flagsAndFragmentOffset & 0x4000 != 0 }
    /// More fragments.
    @inlinable public var moreFragments: Bool { flagsAndFragmentOffset & 0x2000 != 0 }
    /// The fragment offset in bytes.
    @inlinable public var fragmentOffset: Int { Int(flagsAndFragmentOffset & 0x1FFF) &* 8 }
    /// Whether this is a fragment (more fragments, or an offset).
    @inlinable public var isFragment: Bool { flagsAndFragmentOffset & 0x3FFF != 0 }
    /// Time to live.
    @inlinable public var timeToLive: UInt8 { bytes[8] }
    /// The protocol of the payload.
    @inlinable public var protocolNumber: UInt8 { bytes[9] }
    /// The source address, first octet most significant.
    @inlinable public var source: UInt32 { u32(12) }
    /// The destination address, first octet most significant.
    @inlinable public var destination: UInt32 { u32(16) }
    /// The source and destination addresses as they stand (8 bytes, for the pseudo-header).
    @inlinable public var addressBytes: UnsafeRawBufferPointer { slice(12..<20) }
    /// The header with its options.
    @inlinable public var header: UnsafeRawBufferPointer { slice(0..<headerLength) }

    /// Whether the header checksum verifies.
    @inlinable
    public var hasValidChecksum: Bool {
        var sum = InternetChecksum()
        sum.add(header)
        return sum.value == 0
    }
}
