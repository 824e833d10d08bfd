/// Byte-order readers and writers that never trap: every access is checked against the buffer first, so offsets
/// taken from frame bytes (hostile input) can at worst make a read come back `nil` or a write do nothing.

extension UnsafeRawBufferPointer {
    /// The byte at `offset`; `nil` outside the buffer.
    @inlinable
    public func byte(at offset: Int) -> UInt8? {
        offset >= 0 && offset < count ? self[offset] : nil
    }

    /// The big-endian (network order) integer at `offset`; `nil` when its bytes are not all in the buffer.
    @inlinable
    public func load<T: FixedWidthInteger>(bigEndian type: T.Type, at offset: Int) -> T? {
        loadChecked(type, at: offset).map(T.init(bigEndian:))
    }

    /// The little-endian integer at `offset`; `nil` when its bytes are not all in the buffer.
    @inlinable
    public func load<T: FixedWidthInteger>(littleEndian type: T.Type, at offset: Int) -> T? {
        loadChecked(type, at: offset).map(T.init(littleEndian:))
    }

    /// The integer's bytes at `offset` as they stand; `nil` when they are not all in the buffer.
    @inlinable
    func loadChecked<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset <= count - MemoryLayout<T>.size else { return nil }
        return loadUnaligned(fromByteOffset: offset, as: T.self)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores `value` big-endian (network order) at `offset`; `false`, and nothing written, when it does not fit.
    @inlinable
    @discardableResult
    public func store<T: FixedWidthInteger>(bigEndian value: T, at offset: Int) -> Bool {
        storeChecked(value.bigEndian, at: offset)
    }

    /// Stores `value` little-endian at `offset`; `false`, and nothing written, when it does not fit.
    @inlinable
    @discardableResult
    public func store<T: FixedWidthInteger>(littleEndian value: T, at offset: Int) -> Bool {
        storeChecked(value.littleEndian, at: offset)
    }

    /// Stores `value`'s bytes as they stand at `offset`; `false`, and nothing written, when they do not fit.
    @inlinable
    func storeChecked<T: FixedWidthInteger>(_ value: T, at offset: Int) -> Bool {
        guard offset >= 0, offset <= count - MemoryLayout<T>.size else { return false }
        storeBytes(of: value, toByteOffset: offset, as: T.self)
        return true
    }
}

/// Lenient network-order access for byte arrays being parsed or built (the NAT's packets): a read outside the array
/// gives 0 and a write outside it does nothing. Parsers check lengths first; these keep a mistake in a check from
/// becoming a crash.
extension Array where Element == UInt8 {
    /// The byte at `index`, or 0 outside the array.
    @inlinable
    public func byte(at index: Int) -> UInt8 { index >= 0 && index < count ? self[index] : 0 }

    /// The big-endian integer at `offset`; `nil` when its bytes are not all in the array.
    @inlinable
    public func load<T: FixedWidthInteger>(bigEndian type: T.Type, at offset: Int) -> T? {
        withUnsafeBytes { $0.load(bigEndian: type, at: offset) }
    }

    /// The little-endian integer at `offset`; `nil` when its bytes are not all in the array.
    @inlinable
    public func load<T: FixedWidthInteger>(littleEndian type: T.Type, at offset: Int) -> T? {
        withUnsafeBytes { $0.load(littleEndian: type, at: offset) }
    }

    /// Stores `value` big-endian at `offset`; `false`, and nothing written, when it does not fit.
    @inlinable
    @discardableResult
    public mutating func store<T: FixedWidthInteger>(bigEndian value: T, at offset: Int) -> Bool {
        withUnsafeMutableBytes { $0.store(bigEndian: value, at: offset) }
    }

    /// Stores `value` little-endian at `offset`; `false`, and nothing written, when it does not fit.
    @inlinable
    @discardableResult
    public mutating func store<T: FixedWidthInteger>(littleEndian value: T, at offset: Int) -> Bool {
        withUnsafeMutableBytes { $0.store(littleEndian: value, at: offset) }
    }

    /// The big-endian 16-bit value at `index`; bytes outside the array read as 0.
    @inlinable
    public func bigEndian16(at index: Int) -> UInt16 {
        UInt16(byte(at: index)) << 8 | UInt16(byte(at: index &+ 1))
    }

    /// The big-endian 32-bit value at `index`; bytes outside the array read as 0.
    @inlinable
    public func bigEndian32(at index: Int) -> UInt32 {
        UInt32(bigEndian16(at: index)) << 16 | UInt32(bigEndian16(at: index &+ 2))
    }

    /// The big-endian 64-bit value at `index`; bytes outside the array read as 0.
    @inlinable
    public func bigEndian64(at index: Int) -> UInt64 {
        UInt64(bigEndian32(at: index)) << 32 | UInt64(bigEndian32(at: index &+ 4))
    }

    /// Stores `value` big-endian at `index`; nothing when it does not fit.
    @inlinable
    public mutating func storeBigEndian16(_ value: UInt16, at index: Int) {
        guard index >= 0, index < count - 1 else { return }
        self[index] = UInt8(truncatingIfNeeded: value >> 8)
        self[index + 1] = UInt8(truncatingIfNeeded: value)
    }

    /// Stores `value` big-endian at `index`; only the 16-bit halves that fit are written.
    @inlinable
    public mutating func storeBigEndian32(_ value: UInt32, at index: Int) {
        storeBigEndian16(UInt16(truncatingIfNeeded: value >> 16), at: index)
        storeBigEndian16(UInt16(truncatingIfNeeded: value), at: index &+ 2)
    }

    /// Appends `value` big-endian.
    @inlinable
    public mutating func appendBigEndian16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends `value` big-endian.
    @inlinable
    public mutating func appendBigEndian32(_ value: UInt32) {
        appendBigEndian16(UInt16(truncatingIfNeeded: value >> 16))
        appendBigEndian16(UInt16(truncatingIfNeeded: value))
    }

    /// Appends `value` little-endian.
    @inlinable
    public mutating func appendLittleEndian16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value))
        append(UInt8(truncatingIfNeeded: value >> 8))
    }

    /// Appends `value` little-endian.
    @inlinable
    public mutating func appendLittleEndian32(_ value: UInt32) {
        appendLittleEndian16(UInt16(truncatingIfNeeded: value))
        appendLittleEndian16(UInt16(truncatingIfNeeded: value >> 16))
    }

    /// `length` bytes from `start`, clamped to the array.
    @inlinable
    public func bytes(from start: Int, count length: Int) -> [UInt8] {
        let lower = Swift.min(Swift.max(0, start), count)
        let upper = Swift.min(count, lower + Swift.max(0, Swift.min(length, count)))
        return Array(self[lower..<upper])
    }
}
