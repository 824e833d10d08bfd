/// A guest-physical address.
///
/// Arithmetic on guest addresses is checked: a sum that would wrap past the top of the 64-bit address space is
/// reported as `nil` (or as a ``DMAError`` by the memory helpers), never as a trap.
public struct GuestAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as the guest sees it.
    public var rawValue: UInt64

    /// Wraps a raw guest-physical address.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Wraps a raw guest-physical address.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// The address `offset` bytes further on, or `nil` if that would wrap around the address space.
    @inlinable
    public func advanced(by offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(sum)
    }

    public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}
