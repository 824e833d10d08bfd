import Glibc
import Synchronization

/// One captured frame.
public struct PcapRecord: Hashable, Sendable {
    /// Capture time since the Unix epoch, in nanoseconds.
    public var timestampNanoseconds: UInt64
    /// The bytes captured (at most the snapshot length).
    public var bytes: [UInt8]
    /// The frame's length on the wire.
    public var originalLength: Int

    public init(timestampNanoseconds: UInt64, bytes: [UInt8], originalLength: Int? = nil) {
        self.timestampNanoseconds = timestampNanoseconds
        self.bytes = bytes
        self.originalLength = originalLength ?? bytes.count
    }
}

/// Why a pcap file could not be read or written.
public struct PcapError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    /// The byte offset in the file where the problem is, if it is about the contents.
    public var offset: Int?

    public init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    public var description: String { offset.map { "\(message) at byte \($0)" } ?? message }
}

/// Reads classic libpcap files (either byte order, microsecond or nanosecond timestamps).
public struct PcapReader: Sendable {
    /// The link type from the file header (1 is Ethernet), without the FCS bits.
    public let linkType: UInt32
    /// Bytes of FCS each captured frame carries, from the header's FCS bits (0 when absent).
    public let fcsLength: Int
    /// The snapshot length from the file header.
    public let snapshotLength: UInt32
    /// The records in file order.
    public let records: [PcapRecord]

    /// Parses `data`; throws naming the offset of the first malformed byte.
    public init(data: [UInt8]) throws(PcapError) {
        guard data.count >= 24 else { throw PcapError("file shorter than the 24-byte pcap header", offset: 0) }
        let magicLE = Self.u32(data, 0, bigEndian: false)
        let bigEndian: Bool
        let nanoseconds: Bool
        switch magicLE {
        case 0xA1B2_C3D4: (bigEndian, nanoseconds) = (false, false)
        case 0xA1B2_3C4D: (bigEndian, nanoseconds) = (false, true)
        case 0xD4C3_B2A1: (bigEndian, nanoseconds) = (true, false)
        case 0x4D3C_B2A1: (bigEndian, nanoseconds) = (true, true)
        default:
            throw PcapError("bad magic 0x\(String(magicLE, radix: 16)) (pcapng is not supported)", offset: 0)
        }
        snapshotLength = Self.u32(data, 16, bigEndian: bigEndian)
        let linkField = Self.u32(data, 20, bigEndian: bigEndian)
        linkType = linkField & 0xFFFF
        // Bit 28 says an FCS length is present; bits 31:29 give it in 16-bit words.
        fcsLength = linkField & (1 << 28) != 0 ? Int(linkField >> 29) * 2 : 0
        var records: [PcapRecord] = []
        var offset = 24
        while offset < data.count {
            guard data.count - offset >= 16 else { throw PcapError("truncated record header", offset: offset) }
            let seconds = UInt64(Self.u32(data, offset, bigEndian: bigEndian))
            let fraction = UInt64(Self.u32(data, offset + 4, bigEndian: bigEndian))
            let captured = Int(Self.u32(data, offset + 8, bigEndian: bigEndian))
            let original = Int(Self.u32(data, offset + 12, bigEndian: bigEndian))
            guard captured <= 0x4000_0000 else {
                throw PcapError("record claims \(captured) captured bytes", offset: offset + 8)
            }
            guard data.count - offset - 16 >= captured else {
                throw PcapError("record of \(captured) bytes runs past the end", offset: offset)
            }
            let start = offset + 16
            records.append(
                PcapRecord(
                    timestampNanoseconds: seconds &* 1_000_000_000 &+ (nanoseconds ? fraction : fraction &* 1000),
                    bytes: Array(data[start..<start + captured]), originalLength: original))
            offset = start + captured
        }
        self.records = records
    }

    /// Reads and parses the file at `path`.
    public init(path: String) throws(PcapError) {
        try self.init(data: try Self.readFile(path))
    }

    private static func readFile(_ path: String) throws(PcapError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw PcapError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        if ferror(file) != 0 { throw PcapError("cannot read \(path)") }
        return data
    }

    private static func u32(_ data: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt32 {
        (bigEndian ? data.load(bigEndian: UInt32.self, at: offset) : data.load(littleEndian: UInt32.self, at: offset))
            ?? 0
    }
}

/// Writes a classic libpcap file (little-endian, nanosecond timestamps, link type Ethernet) that `tcpdump -r` reads.
/// Safe to call from several threads.
public final class PcapWriter: Sendable {
    /// Link type 1: Ethernet.
    public static let ethernetLinkType: UInt32 = 1

    private let descriptor: Mutex<Int32>
    private let failures = Atomic<UInt64>(0)

    /// Frames that could not be written (a full disk, a closed file): the capture's drop counter.
    public var failedWrites: UInt64 { failures.load(ordering: .relaxed) }
    /// The snapshot length: longer frames are truncated to it.
    public let snapshotLength: Int

    /// Creates (or truncates) the file at `path` and writes the header.
    public init(path: String, snapshotLength: Int = 262_144) throws(PcapError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PcapError("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.snapshotLength = min(max(64, snapshotLength), 262_144)
        var header: [UInt8] = []
        header.appendLittleEndian32(0xA1B2_3C4D)
        header.appendLittleEndian16(2)
        header.appendLittleEndian16(4)
        header.appendLittleEndian32(0)
        header.appendLittleEndian32(0)
        header.appendLittleEndian32(UInt32(self.snapshotLength))
        header.appendLittleEndian32(Self.ethernetLinkType)
        guard Self.writeAll(fd, header) else {
            Glibc.close(fd)
            throw PcapError("cannot write the pcap header to \(path)")
        }
        descriptor = Mutex(fd)
    }

    /// Appends one frame captured at `timestampNanoseconds` since the epoch (now, by default).
    public func write(_ frame: UnsafeRawBufferPointer, timestampNanoseconds: UInt64? = nil) {
        let stamp = timestampNanoseconds ?? Self.wallClockNanoseconds()
        let captured = min(frame.count, snapshotLength)
        var record: [UInt8] = []
        record.reserveCapacity(16 + captured)
        record.appendLittleEndian32(UInt32(truncatingIfNeeded: stamp / 1_000_000_000))
        record.appendLittleEndian32(UInt32(truncatingIfNeeded: stamp % 1_000_000_000))
        record.appendLittleEndian32(UInt32(captured))
        record.appendLittleEndian32(UInt32(truncatingIfNeeded: frame.count))
        record.append(contentsOf: frame[0..<captured])
        let written = descriptor.withLock { fd in fd >= 0 && Self.writeAll(fd, record) }
        if !written { failures.add(1, ordering: .relaxed) }
    }

    /// Appends one frame.
    public func write(_ frame: [UInt8], timestampNanoseconds: UInt64? = nil) {
        frame.withUnsafeBytes { write($0, timestampNanoseconds: timestampNanoseconds) }
    }

    /// Flushes and closes the file; later writes are ignored.
    public func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    deinit { close() }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    private static func wallClockNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
