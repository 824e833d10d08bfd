import Glibc

/// Writes trace text in format v1: the header, then one operation or comment per line. The one writer behind the
/// harness's ``Trace/text`` and the C library's session recording.
public struct TraceWriter: Sendable {
    /// Why a trace file could not be written.
    public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The path and the system's reason.
        public var message: String
        public var description: String { message }
    }

    /// The lines after the header, without line breaks.
    public private(set) var lines: [String] = []
    /// The bytes the lines take, line breaks included.
    public private(set) var byteCount = 0
    /// The most bytes the lines may take; past it one comment says the trace was cut short and the rest is dropped.
    public let limit: Int
    /// Whether lines were dropped at ``limit``.
    public private(set) var isTruncated = false

    /// Starts an empty trace whose lines may take at most `limit` bytes.
    public init(limit: Int = .max) { self.limit = limit }

    /// Appends `operation`'s line, with `comment` after it.
    public mutating func append(_ operation: TraceOperation, comment: String? = nil) {
        var line = operation.text
        if let comment { line += "  # " + comment }
        add(line)
    }

    /// Appends a comment line.
    public mutating func comment(_ text: String) { add("# " + text) }

    /// Appends every line of `other` (up to this writer's limit).
    public mutating func append(contentsOf other: TraceWriter) {
        for line in other.lines { add(line) }
        if other.isTruncated && !isTruncated { comment("recording cut short at \(other.limit) bytes") }
    }

    /// The trace as text: the header, then the lines.
    public var text: String {
        var output = Trace.header + "\n"
        output.reserveCapacity(byteCount + output.utf8.count)
        for line in lines {
            output += line
            output += "\n"
        }
        return output
    }

    /// Writes the trace to `path`, replacing the file.
    public func write(to path: String) throws(FileError) {
        guard let file = fopen(path, "w") else {
            throw FileError(message: "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var ok = fputs(Trace.header + "\n", file) >= 0
        for line in lines where ok { ok = fputs(line, file) >= 0 && fputc(0x0A, file) != EOF }
        guard ok, fflush(file) == 0 else {
            throw FileError(message: "writing \(path): \(String(cString: strerror(errno)))")
        }
    }

    private mutating func add(_ line: String) {
        guard !isTruncated else { return }
        let size = line.utf8.count + 1
        guard size <= limit - byteCount else {
            isTruncated = true
            lines.append("# recording cut short at \(limit) bytes")
            return
        }
        byteCount += size
        lines.append(line)
    }
}
