/// An IPv4 header (RFC 791) over borrowed bytes: the version, header length and header length's fit are checked on
/// creation, so every field accessor reads inside the buffer.
public struct IPv4Header {
    /// The bytes from the start of the header (the header, then whatever follows it in the buffer).
    public let bytes: UnsafeRawBufferPointer

    /// The size of a header without options.
    public static let minimumSize = 20

    /// Reads the header at the start of `bytes`; `nil` unless the version is 4, the header length is at least 20
    /// and the whole header (options included) is in `bytes`. The total length is not checked against `bytes`.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.minimumSize, bytes[0] >> 4 == 4 else { return nil }
        let length = Int(bytes[0] & 0x0F) &* 4
        guard length >= Self.minimumSize, length <= bytes.count else { return nil }
        self.bytes = bytes
    }

    @inlinable
    func u16(_ offset: Int) -> UInt16 { bytes.load(bigEndian: UInt16.self, at: offset) ?? 0 }

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
    @inlinable public var source: UInt32 { bytes.load(bigEndian: UInt32.self, at: 12) ?? 0 }
    /// The destination address, first octet most significant.
    @inlinable public var destination: UInt32 { bytes.load(bigEndian: UInt32.self, at: 16) ?? 0 }
    /// The source and destination addresses as they stand (8 bytes, for the pseudo-header).
    @inlinable public var addressBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[12..<20]) }
    /// The header with its options.
    @inlinable
    public var header: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[0..<headerLength]) }

    /// Whether the header checksum verifies.
    @inlinable
    public var hasValidChecksum: Bool {
        var sum = InternetChecksum()
        sum.add(header)
        return sum.value == 0
    }
}
