/// A 48-bit IEEE 802 MAC address.
public struct MACAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits, first octet most significant.
    public let rawValue: UInt64

    /// The broadcast address ff:ff:ff:ff:ff:ff.
    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)

    /// Wraps the low 48 bits of `rawValue`.
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    /// Creates an address from its six octets in transmission order; `nil` unless there are exactly six.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 6 else { return nil }
        rawValue = bytes.reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// Parses `52:54:00:12:34:56` (or with `-` separators); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let fields = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        var value: UInt64 = 0
        for field in fields {
            guard field.count == 2, field.allSatisfy(\.isHexDigit), let octet = UInt8(field, radix: 16) else {
                return nil
            }
            value = (value << 8) | UInt64(octet)
        }
        rawValue = value
    }

    /// Reads the address at `offset` of `buffer`; `nil` if the buffer is too short.
    @inlinable
    public init?(in buffer: UnsafeRawBufferPointer, at offset: Int) {
        guard offset >= 0, buffer.count >= 6, offset <= buffer.count - 6 else { return nil }
        var value: UInt64 = 0
        for i in 0..<6 { value = (value << 8) | UInt64(buffer[offset + i]) }
        rawValue = value
    }

    /// The six octets in transmission order.
    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (8 * UInt64(5 - $0))) } }

    /// Whether the group bit (bit 0 of the first octet) is set: multicast or broadcast.
    public var isMulticast: Bool { rawValue & (1 << 40) != 0 }
    /// Whether this is ff:ff:ff:ff:ff:ff.
    public var isBroadcast: Bool { rawValue == Self.broadcast.rawValue }
    /// Whether the locally-administered bit is set.
    public var isLocallyAdministered: Bool { rawValue & (1 << 41) != 0 }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
