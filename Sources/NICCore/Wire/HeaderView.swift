/// What one kind of header is on the wire: what a ``HeaderView`` of it checks on creation.
public protocol HeaderKind {
    /// Whether `bytes` start with a whole, well-formed header of this kind: what every field accessor relies on.
    static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool
}

/// A header kind of one size: whole when that many bytes are there (and what else its ``HeaderKind/starts(_:)``
/// checks, when it has its own).
public protocol FixedSizeHeaderKind: HeaderKind {
    /// The header's size.
    static var size: Int { get }
}

extension FixedSizeHeaderKind {
    /// Whether `bytes` hold the whole header.
    @inlinable
    public static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool { bytes.count >= size }
}

/// A header at the start of borrowed bytes, checked once on creation by its ``HeaderKind`` so that every field
/// accessor reads inside the buffer: ``IPv4Header``, ``IPv6Header``, ``TCPHeader``, ``UDPHeader``, ``ICMPHeader``
/// and ``ARPHeader`` are views of this one type.
public struct HeaderView<Kind: HeaderKind> {
    /// The bytes from the start of the header (the header, then whatever follows it in the buffer).
    public let bytes: UnsafeRawBufferPointer

    /// Reads the header at the start of `bytes`; `nil` unless it is a whole header of its kind.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard Kind.starts(bytes) else { return nil }
        self.bytes = bytes
    }

    /// The big-endian 16-bit field at `offset`.
    @inlinable
    func u16(_ offset: Int) -> UInt16 { bytes.load(bigEndian: UInt16.self, at: offset) ?? 0 }

    /// The big-endian 32-bit field at `offset`.
    @inlinable
    func u32(_ offset: Int) -> UInt32 { bytes.load(bigEndian: UInt32.self, at: offset) ?? 0 }

    /// The MAC address at `offset`.
    @inlinable
    func mac(_ offset: Int) -> MACAddress { MACAddress(in: bytes, at: offset) ?? MACAddress(rawValue: 0) }

    /// The bytes in `range`.
    @inlinable
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }
}

extension HeaderView where Kind: FixedSizeHeaderKind {
    /// The header's size.
    @inlinable public static var size: Int { Kind.size }
}
