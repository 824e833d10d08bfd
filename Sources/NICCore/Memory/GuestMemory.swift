/// Why a DMA access was refused.
public struct DMAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The reason for the refusal.
    public enum Reason: String, Sendable {
        /// Some of the bytes lie outside guest RAM.
        case outsideRAM = "outside guest RAM"
        /// Some of the bytes lie inside one of the device's own BARs.
        case insideDeviceBAR = "inside the device's own BAR"
        /// The range wraps around the top of the address space.
        case wrapsAddressSpace = "wraps the address space"
        /// The device is not allowed to master the bus (PCI command bit 2 is clear).
        case busMasterDisabled = "bus mastering disabled"
    }

    /// The reason for the refusal.
    public var reason: Reason
    /// The first guest-physical address of the access.
    public var address: GuestAddress
    /// The length of the access in bytes.
    public var length: Int
    /// Whether the device was writing (`true`) or reading guest memory.
    public var isWrite: Bool

    /// Creates an error for an access of `length` bytes at `address`.
    public init(_ reason: Reason, address: GuestAddress, length: Int, isWrite: Bool) {
        self.reason = reason
        self.address = address
        self.length = length
        self.isWrite = isWrite
    }

    public var description: String {
        "DMA \(isWrite ? "write" : "read") of \(length) bytes at \(address): \(reason.rawValue)"
    }
}

/// Guest RAM as the host lends it to a device.
///
/// Accesses copy in and copy out: an implementation never hands out a view of guest memory, because running vCPUs
/// change it underneath the device. Every access outside RAM throws; it never traps.
public protocol GuestMemory: AnyObject {
    /// Copies `buffer.count` bytes of guest memory starting at `address` into `buffer`.
    func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError)
    /// Copies `buffer` into guest memory starting at `address`.
    func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError)
    /// Copies `first` and then `second` into guest memory starting at `address`, as one access (a header and the
    /// payload behind it): one check and one call where an implementation provides it; the default writes the
    /// two parts one after the other.
    func write(at address: GuestAddress, from first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer)
        throws(DMAError)
}

extension GuestMemory {
    public func write(
        at address: GuestAddress, from first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer
    ) throws(DMAError) {
        try write(at: address, from: first)
        guard !second.isEmpty else { return }
        guard let next = address.advanced(by: UInt64(first.count)) else {
            throw DMAError(.wrapsAddressSpace, address: address, length: first.count + second.count, isWrite: true)
        }
        try write(at: next, from: second)
    }

    /// Reads `count` bytes at `address` into a new array.
    public func readBytes(at address: GuestAddress, count: Int) throws(DMAError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(0, count))
        var failure: DMAError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(DMAError) { try read(at: address, into: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Writes `bytes` at `address`.
    public func write(at address: GuestAddress, bytes: [UInt8]) throws(DMAError) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(DMAError) in try write(at: address, from: buffer) } }
            .get()
    }

    /// Reads guest memory at `address` into `bytes[range]`. A range outside `bytes` is refused as a DMA error (it
    /// would be a device bug; refusing it keeps the host's memory intact).
    public func read(at address: GuestAddress, into bytes: inout [UInt8], range: Range<Int>) throws(DMAError) {
        try Self.check(range, within: bytes.count, at: address, isWrite: false)
        try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(DMAError) in
                try read(at: address, into: UnsafeMutableRawBufferPointer(rebasing: buffer[range]))
            }
        }.get()
    }

    /// Writes `bytes[range]` to guest memory at `address`. A range outside `bytes` is refused as a DMA error.
    public func write(at address: GuestAddress, from bytes: [UInt8], range: Range<Int>) throws(DMAError) {
        try Self.check(range, within: bytes.count, at: address, isWrite: true)
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(DMAError) in
                try write(at: address, from: UnsafeRawBufferPointer(rebasing: buffer[range]))
            }
        }.get()
    }

    /// Refuses `range` as a DMA error unless it lies within a buffer of `count` bytes (it would be a device bug;
    /// refusing it keeps the host's memory intact).
    @inline(__always)
    private static func check(_ range: Range<Int>, within count: Int, at address: GuestAddress, isWrite: Bool)
        throws(DMAError)
    {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DMAError(.outsideRAM, address: address, length: range.count, isWrite: isWrite)
        }
    }

    /// Reads a little-endian integer at `address`.
    @inlinable
    public func readLittleEndian<T: FixedWidthInteger>(_: T.Type = T.self, at address: GuestAddress) throws(DMAError)
        -> T
    {
        var value = T.zero
        try withUnsafeMutableBytes(of: &value) { (buffer) throws(DMAError) in try read(at: address, into: buffer) }
        return T(littleEndian: value)
    }

    /// Writes `value` as a little-endian integer at `address`.
    @inlinable
    public func writeLittleEndian<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(DMAError) {
        var stored = value.littleEndian
        try withUnsafeBytes(of: &stored) { (buffer) throws(DMAError) in try write(at: address, from: buffer) }
    }
}
