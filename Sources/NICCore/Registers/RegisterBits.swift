/// A set of bits of one register: an option set whose elements are the register's ``RegisterBit`` cases, so the
/// bits are named once, by position, and sets read `[.ioSpace, .busMaster]`.
public struct RegisterBits<Bit: RegisterBit>: SetAlgebra, RawRepresentable, Hashable, Sendable {
    /// The register value: the masks of the bits in the set.
    public var rawValue: Bit.RawValue

    /// The set whose register value is `rawValue`.
    @inlinable public init(rawValue: Bit.RawValue) { self.rawValue = rawValue }

    /// The empty set.
    @inlinable public init() { rawValue = 0 }

    /// The set of `bits`.
    @inlinable public init(arrayLiteral bits: Bit...) {
        rawValue = 0
        for bit in bits { rawValue |= bit.mask }
    }

    /// Whether `bit` is in the set.
    @inlinable @inline(__always)
    public func contains(_ bit: Bit) -> Bool { rawValue & bit.mask != 0 }

    /// The bits in either set.
    @inlinable public func union(_ other: Self) -> Self { Self(rawValue: rawValue | other.rawValue) }

    /// The bits in both sets.
    @inlinable public func intersection(_ other: Self) -> Self { Self(rawValue: rawValue & other.rawValue) }

    /// The bits in one set only.
    @inlinable public func symmetricDifference(_ other: Self) -> Self { Self(rawValue: rawValue ^ other.rawValue) }

    /// Adds `bit`.
    @discardableResult @inlinable
    public mutating func insert(_ bit: Bit) -> (inserted: Bool, memberAfterInsert: Bit) {
        let inserted = !contains(bit)
        rawValue |= bit.mask
        return (inserted, bit)
    }

    /// Removes `bit`; returns it if it was in the set.
    @discardableResult @inlinable
    public mutating func remove(_ bit: Bit) -> Bit? {
        guard contains(bit) else { return nil }
        rawValue &= ~bit.mask
        return bit
    }

    /// Adds `bit`; returns it if it was already in the set.
    @discardableResult @inlinable
    public mutating func update(with bit: Bit) -> Bit? {
        let present = contains(bit)
        rawValue |= bit.mask
        return present ? bit : nil
    }

    /// Adds the bits of `other`.
    @inlinable public mutating func formUnion(_ other: Self) { rawValue |= other.rawValue }

    /// Keeps only the bits also in `other`.
    @inlinable public mutating func formIntersection(_ other: Self) { rawValue &= other.rawValue }

    /// Keeps the bits in one set only.
    @inlinable public mutating func formSymmetricDifference(_ other: Self) { rawValue ^= other.rawValue }
}
