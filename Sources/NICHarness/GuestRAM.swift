import Glibc
import NICCore
import NICTrace

/// Guest RAM for tests, traces and benchmarks: `size` bytes from guest address 0.
///
/// Device DMA goes through the ``GuestMemory`` conformance: it is checked against the RAM size, counted, optionally
/// logged, and faults are recorded. The driver side (the harness playing the guest) uses ``store(_:at:)`` and
/// ``load(at:count:)``, which are not logged as DMA.
public final class GuestRAM: GuestMemory {
    /// One DMA access the device made.
    public struct Access: Hashable, Sendable, CustomStringConvertible {
        public var address: GuestAddress
        public var length: Int
        public var isWrite: Bool

        public init(address: GuestAddress, length: Int, isWrite: Bool) {
            self.address = address
            self.length = length
            self.isWrite = isWrite
        }

        public var description: String { "\(isWrite ? "write" : "read") \(length)@\(address)" }
    }

    /// The largest RAM the harness allocates.
    public static let maximumSize = Trace.maximumRAMSize

    private let storage: UnsafeMutableRawBufferPointer
    /// Size in bytes.
    public let size: Int
    /// Whether device accesses are logged in ``log``.
    @exclusivity(unchecked) public var logging = false
    /// The most recent device accesses (at most ``logCapacity``), oldest first, when ``logging`` is on.
    @exclusivity(unchecked) public private(set) var log: [Access] = []
    /// How many accesses ``log`` keeps.
    @exclusivity(unchecked) public var logCapacity = 4096
    /// Device accesses made, successful or not.
    @exclusivity(unchecked) public private(set) var accessCount: UInt64 = 0
    /// Device accesses refused because they left RAM.
    @exclusivity(unchecked) public private(set) var faultCount: UInt64 = 0
    /// The last refused device access.
    @exclusivity(unchecked) public private(set) var lastFault: DMAError?

    /// Allocates `size` bytes of zeroed RAM (1 byte to ``maximumSize``).
    public init(size: Int) throws(HarnessError) {
        guard size > 0, size <= Self.maximumSize else {
            throw HarnessError("RAM size \(size) is not between 1 byte and \(Self.maximumSize / (1 << 20))M")
        }
        self.size = size
        // Anonymous memory is zero-filled on first touch, so a large RAM costs only what the guest uses.
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != MAP_FAILED
        else { throw HarnessError("cannot map \(size) bytes of guest RAM: \(String(cString: strerror(errno)))") }
        storage = UnsafeMutableRawBufferPointer(start: base, count: size)
    }

    deinit { munmap(storage.baseAddress, size) }

    @inline(__always)
    private func offset(_ address: GuestAddress, _ count: Int, isWrite: Bool) throws(DMAError) -> Int {
        accessCount &+= 1
        let limit = UInt64(size)
        guard address.rawValue <= limit, UInt64(count) <= limit - address.rawValue else {
            let error = DMAError(.outsideRAM, address: address, length: count, isWrite: isWrite)
            faultCount &+= 1
            lastFault = error
            throw error
        }
        if logging { record(Access(address: address, length: count, isWrite: isWrite)) }
        return Int(address.rawValue)
    }

    private func record(_ access: Access) {
        if log.count >= logCapacity { log.removeFirst(log.count - logCapacity + 1) }
        log.append(access)
    }

    /// Forgets the access log.
    public func clearLog() { log.removeAll() }

    public func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError) {
        let start = try offset(address, buffer.count, isWrite: false)
        guard buffer.count > 0 else { return }
        buffer.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: buffer.count)
    }

    public func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError) {
        let start = try offset(address, buffer.count, isWrite: true)
        guard buffer.count > 0 else { return }
        (storage.baseAddress! + start).copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
    }

    public func write(
        at address: GuestAddress, from first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer
    ) throws(DMAError) {
        let start = try offset(address, first.count + second.count, isWrite: true)
        if let source = first.baseAddress, !first.isEmpty {
            (storage.baseAddress! + start).copyMemory(from: source, byteCount: first.count)
        }
        if let source = second.baseAddress, !second.isEmpty {
            (storage.baseAddress! + start + first.count).copyMemory(from: source, byteCount: second.count)
        }
    }

    // MARK: Guest (driver) side

    /// Whether `count` bytes at `address` lie inside RAM.
    public func contains(_ address: UInt64, count: Int) -> Bool {
        count >= 0 && address <= UInt64(size) && UInt64(count) <= UInt64(size) - address
    }

    /// Stores `bytes` at `address` as the guest would (not logged as DMA).
    public func store(_ bytes: [UInt8], at address: UInt64) throws(HarnessError) {
        guard contains(address, count: bytes.count) else {
            throw HarnessError("\(bytes.count) bytes at 0x\(String(address, radix: 16)) are outside \(size)-byte RAM")
        }
        bytes.withUnsafeBytes { source in
            guard let base = source.baseAddress else { return }
            (storage.baseAddress! + Int(address)).copyMemory(from: base, byteCount: source.count)
        }
    }

    /// Fills `count` bytes at `address` with `byte` (not logged as DMA).
    public func fill(_ byte: UInt8, count: Int, at address: UInt64) throws(HarnessError) {
        guard contains(address, count: count) else {
            throw HarnessError("\(count) bytes at 0x\(String(address, radix: 16)) are outside \(size)-byte RAM")
        }
        (storage.baseAddress! + Int(address)).initializeMemory(as: UInt8.self, repeating: byte, count: count)
    }

    /// Loads `count` bytes at `address` as the guest would (not logged as DMA).
    public func load(at address: UInt64, count: Int) throws(HarnessError) -> [UInt8] {
        guard contains(address, count: count) else {
            throw HarnessError("\(count) bytes at 0x\(String(address, radix: 16)) are outside \(size)-byte RAM")
        }
        return Array(UnsafeRawBufferPointer(rebasing: storage[Int(address)..<Int(address) + count]))
    }

    /// Stores a little-endian integer at `address` as the guest would.
    public func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(HarnessError) {
        try store(Swift.withUnsafeBytes(of: value.littleEndian) { Array($0) }, at: address)
    }

    /// Loads a little-endian integer at `address` as the guest would.
    public func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(HarnessError) -> T {
        let bytes = try load(at: address, count: MemoryLayout<T>.size)
        return bytes.reversed().reduce(T.zero) { $0 << 8 | T($1) }
    }

    /// Raw access for the benchmark's guest side: `body` gets the RAM's bytes. Not logged.
    public func withUnsafeBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(storage)
    }
}

/// A harness or trace problem that is not an assertion failure: bad setup, bad arguments.
public struct HarnessError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
