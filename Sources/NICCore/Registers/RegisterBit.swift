/// One bit of a hardware register, named by its position.
///
/// Conform an enum whose raw type is the register's width and whose raw values are bit numbers; consecutive bits
/// are consecutive cases, so only the first of a run needs an explicit number:
///
/// ```swift
/// enum ICR: UInt32, RegisterBit {
///     case transmitDescriptorWritten = 0
///     case transmitQueueEmpty, linkStatusChange, receiveSequenceError
///     case receiveTimer = 7
/// }
/// let pending = regs[Reg.icr].has(.receiveTimer)
/// ```
///
/// Everything here is inlinable, so a mask folds to a constant.
public protocol RegisterBit: RawRepresentable, Sendable
where RawValue: FixedWidthInteger & UnsignedInteger & Sendable {}

extension RegisterBit {
    /// The register value with only this bit set (0 for a position past the register's width).
    @inlinable public var mask: RawValue {
        @inline(__always) get { 1 << rawValue }
    }
}

extension FixedWidthInteger where Self: UnsignedInteger {
    /// Whether `bit` is set.
    @inlinable @inline(__always)
    public func has<Bit: RegisterBit>(_ bit: Bit) -> Bool where Bit.RawValue == Self { self & bit.mask != 0 }

    /// Sets `bit` if `on`, clears it otherwise.
    @inlinable @inline(__always)
    public mutating func set<Bit: RegisterBit>(_ bit: Bit, _ on: Bool = true) where Bit.RawValue == Self {
        self = on ? self | bit.mask : self & ~bit.mask
    }

    /// Clears `bit`.
    @inlinable @inline(__always)
    public mutating func clear<Bit: RegisterBit>(_ bit: Bit) where Bit.RawValue == Self { self &= ~bit.mask }
}

/// A field of several bits in a register: `width` bits from bit `shift` up.
public struct RegisterField<Word: FixedWidthInteger & UnsignedInteger>: Sendable {
    /// The position of the field's lowest bit.
    public let shift: Int
    /// The number of bits.
    public let width: Int

    /// The field of `width` bits starting at bit `shift`.
    @inlinable @inline(__always)
    public init(shift: Int, width: Int) {
        self.shift = shift
        self.width = width
    }

    /// The field's bits in place.
    @inlinable public var mask: Word {
        @inline(__always) get { (Word.max >> (Word.bitWidth &- width)) << shift }
    }

    /// The field's value in `register`, shifted down.
    @inlinable @inline(__always)
    public func value(in register: Word) -> Word { (register & mask) >> shift }

    /// `value` shifted into place (bits beyond the field dropped).
    @inlinable @inline(__always)
    public func callAsFunction(_ value: Word) -> Word { (value << shift) & mask }
}
