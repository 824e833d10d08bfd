import NICCards
import NICCore

/// Parses register-level traces (format v1). Never traps on any input: every problem is a
/// ``TraceFailure/malformed(line:message:)`` naming the line.
public enum TraceParser {
    /// The longest frame an `rx` or `tx-expect` line may carry.
    public static let maximumFrameBytes = 65_535
    /// The longest `mem-write`/`mem-expect` payload.
    public static let maximumMemoryBytes = 1 << 20
    /// The largest single `clock` step.
    public static let maximumClockStep: UInt64 = 60_000_000_000

    /// Parses `text`; the first line must be the header `vnic-trace 1`.
    public static func parse(_ text: String) throws(TraceFailure) -> Trace {
        var lines: [Trace.Line] = []
        var sawHeader = false
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var content = Substring(rawLine)
            var comment: String?
            if let hash = content.firstIndex(of: "#") {
                let note = content[content.index(after: hash)...].trimmingSpaces
                comment = note.isEmpty ? nil : String(note)
                content = content[..<hash]
            }
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !words.isEmpty else { continue }
            if !sawHeader {
                guard words.count == 2, words[0] == "vnic-trace" else {
                    throw .malformed(line: number, message: "expected the header '\(Trace.header)'")
                }
                guard words[1] == "1" else {
                    throw .malformed(line: number, message: "unsupported trace format version '\(words[1])'")
                }
                sawHeader = true
                continue
            }
            do throws(ParseProblem) {
                let operation = try parseOperation(words)
                lines.append(Trace.Line(number: number, operation: operation, comment: comment))
            } catch {
                throw .malformed(line: number, message: error.message)
            }
        }
        guard sawHeader else { throw .malformed(line: max(1, number), message: "missing the header '\(Trace.header)'") }
        return Trace(lines: lines)
    }

    struct ParseProblem: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    private static func parseOperation(_ words: [Substring]) throws(ParseProblem) -> TraceOperation {
        let keyword = String(words[0])
        let arguments = Array(words.dropFirst())
        switch keyword {
        case "device":
            guard arguments.count >= 2 else {
                throw ParseProblem("usage: device MODEL mac=XX:XX:XX:XX:XX:XX [queues=N] [mtu=N]")
            }
            guard let model = CardModel(rawValue: String(arguments[0]).lowercased()) else {
                let known = CardModel.allCases.map(\.rawValue).joined(separator: " ")
                throw ParseProblem("unknown device '\(arguments[0])' (known: \(known))")
            }
            guard arguments[1].hasPrefix("mac="), let mac = MACAddress(arguments[1].dropFirst(4)) else {
                throw ParseProblem("bad MAC '\(arguments[1])' (expected mac=52:54:00:12:34:56)")
            }
            do throws(CardError) {
                let options = try CardOptions(parsing: arguments.dropFirst(2).joined(separator: " "), for: model)
                return .device(model, mac: mac, options: options)
            } catch {
                throw ParseProblem(error.message)
            }
        case "ram":
            guard arguments.count == 1 else { throw ParseProblem("usage: ram SIZE (e.g. 16M)") }
            return .ram(bytes: try size(arguments[0]))
        case "cfg-write":
            guard arguments.count == 3 else { throw ParseProblem("usage: cfg-write OFFSET WIDTH VALUE") }
            let (offset, width) = try configLocation(arguments[0], arguments[1])
            return .configWrite(offset: offset, width: width, value: try value(arguments[2], width: width))
        case "cfg-read":
            guard arguments.count >= 2 else { throw ParseProblem("usage: cfg-read OFFSET WIDTH [= V | & MASK = V]") }
            let (offset, width) = try configLocation(arguments[0], arguments[1])
            return .configRead(offset: offset, width: width, expect: try expectation(arguments.dropFirst(2)))
        case "mmio-write", "io-write":
            guard arguments.count == 4 else { throw ParseProblem("usage: \(keyword) BAR OFFSET WIDTH VALUE") }
            let (bar, offset, width) = try barLocation(arguments)
            return .barWrite(
                keyword.hasPrefix("io") ? .io : .memory, bar: bar, offset: offset, width: width,
                value: try value(arguments[3], width: width))
        case "mmio-read", "io-read":
            guard arguments.count >= 3 else { throw ParseProblem("usage: \(keyword) BAR OFFSET WIDTH [= V]") }
            let (bar, offset, width) = try barLocation(arguments)
            return .barRead(
                keyword.hasPrefix("io") ? .io : .memory, bar: bar, offset: offset, width: width,
                expect: try expectation(arguments.dropFirst(3)))
        case "mem-write", "mem-expect":
            guard arguments.count == 2 else { throw ParseProblem("usage: \(keyword) ADDRESS HEXBYTES") }
            let address = try number(arguments[0], "address")
            let bytes = try hex(arguments[1], limit: maximumMemoryBytes)
            return keyword == "mem-write"
                ? .memoryWrite(address: address, bytes: bytes) : .memoryExpect(address: address, bytes: bytes)
        case "mem-fill":
            guard arguments.count == 3 else { throw ParseProblem("usage: mem-fill ADDRESS COUNT BYTE") }
            let address = try number(arguments[0], "address")
            let count = try number(arguments[1], "count")
            guard count <= UInt64(Trace.maximumRAMSize) else { throw ParseProblem("fill count \(count) too large") }
            let byte = try number(arguments[2], "byte")
            guard byte <= 0xFF else { throw ParseProblem("fill byte \(arguments[2]) is not 0...0xff") }
            return .memoryFill(address: address, count: Int(count), byte: UInt8(byte))
        case "rx", "tx-expect":
            guard arguments.count == 1 else { throw ParseProblem("usage: \(keyword) HEXFRAME") }
            let bytes = try hex(arguments[0], limit: maximumFrameBytes)
            return keyword == "rx" ? .receive(bytes) : .transmitExpect(bytes)
        case "tx-count":
            guard arguments.count == 2, arguments[0] == "=" else { throw ParseProblem("usage: tx-count = N") }
            let count = try number(arguments[1], "count")
            guard count <= UInt64(Int32.max) else { throw ParseProblem("count \(count) too large") }
            return .transmitCount(Int(count))
        case "irq":
            guard arguments.count == 2, arguments[0] == "=", arguments[1] == "0" || arguments[1] == "1" else {
                throw ParseProblem("usage: irq = 0|1")
            }
            return .interrupt(arguments[1] == "1")
        case "msix":
            guard arguments.count == 3, arguments[1] == "=" else { throw ParseProblem("usage: msix VECTOR = COUNT") }
            let vector = try number(arguments[0], "vector")
            let count = try number(arguments[2], "count")
            guard vector < 2048, count <= UInt64(Int32.max) else { throw ParseProblem("vector or count out of range") }
            return .msix(vector: Int(vector), count: Int(count))
        case "clock":
            guard arguments.count == 1 else { throw ParseProblem("usage: clock DURATION (e.g. 200us)") }
            return .clock(nanoseconds: try duration(arguments[0]))
        case "link":
            guard arguments.count == 1, arguments[0] == "up" || arguments[0] == "down" else {
                throw ParseProblem("usage: link up|down")
            }
            return .link(up: arguments[0] == "up")
        default:
            throw ParseProblem("unknown operation '\(keyword.prefix(40))'")
        }
    }

    private static func number(_ word: Substring, _ what: String) throws(ParseProblem) -> UInt64 {
        let parsed: UInt64?
        if word.hasPrefix("0x") || word.hasPrefix("0X") {
            parsed = word.count > 2 ? UInt64(word.dropFirst(2), radix: 16) : nil
        } else {
            parsed = UInt64(word, radix: 10)
        }
        guard let parsed else { throw ParseProblem("bad \(what) '\(word.prefix(40))' (hex with 0x or decimal)") }
        return parsed
    }

    private static func width(_ word: Substring) throws(ParseProblem) -> Int {
        let value = try number(word, "width")
        guard [1, 2, 4, 8].contains(value) else { throw ParseProblem("width \(word) is not 1, 2, 4 or 8") }
        return Int(value)
    }

    private static func value(_ word: Substring, width: Int) throws(ParseProblem) -> UInt64 {
        let parsed = try number(word, "value")
        guard width == 8 || parsed >> (8 * UInt64(width)) == 0 else {
            throw ParseProblem("value \(word) does not fit in \(width) bytes")
        }
        return parsed
    }

    private static func configLocation(_ offset: Substring, _ width: Substring) throws(ParseProblem) -> (Int, Int) {
        let parsedOffset = try number(offset, "config offset")
        guard parsedOffset < 256 else { throw ParseProblem("config offset \(offset) is past 0xff") }
        let parsedWidth = try self.width(width)
        guard parsedWidth <= 4 else { throw ParseProblem("config access width \(width) is not 1, 2 or 4") }
        return (Int(parsedOffset), parsedWidth)
    }

    private static func barLocation(_ arguments: [Substring]) throws(ParseProblem) -> (Int, UInt64, Int) {
        let bar = try number(arguments[0], "BAR")
        guard bar < 6 else { throw ParseProblem("BAR \(arguments[0]) is not 0...5") }
        return (Int(bar), try number(arguments[1], "offset"), try width(arguments[2]))
    }

    private static func expectation(_ words: ArraySlice<Substring>) throws(ParseProblem) -> TraceExpectation {
        let words = Array(words)
        switch words.count {
        case 0: return .none
        case 2 where words[0] == "=": return .equals(try number(words[1], "expected value"))
        case 4 where words[0] == "&" && words[2] == "=":
            return .masked(mask: try number(words[1], "mask"), value: try number(words[3], "expected value"))
        default: throw ParseProblem("expected '= VALUE' or '& MASK = VALUE' after the access")
        }
    }

    private static func hex(_ word: Substring, limit: Int) throws(ParseProblem) -> [UInt8] {
        if word == "-" { return [] }
        guard word.utf8.count <= 2 * limit else { throw ParseProblem("hex data longer than \(limit) bytes") }
        guard let bytes = Hex.decode(word) else {
            throw ParseProblem("bad hex data '\(word.prefix(40))' (an even number of hex digits)")
        }
        return bytes
    }

    private static func size(_ word: Substring) throws(ParseProblem) -> Int {
        var digits = word
        var scale: UInt64 = 1
        if let last = word.last, last == "K" || last == "k" || last == "M" || last == "m" || last == "G" || last == "g"
        {
            scale = last == "K" || last == "k" ? 1 << 10 : last == "M" || last == "m" ? 1 << 20 : 1 << 30
            digits = word.dropLast()
        }
        let count = try number(digits, "RAM size")
        let (bytes, overflow) = count.multipliedReportingOverflow(by: scale)
        guard !overflow, bytes > 0, bytes <= UInt64(Trace.maximumRAMSize) else {
            throw ParseProblem("RAM size \(word) is not 1 byte...\(Trace.maximumRAMSize >> 20)M")
        }
        return Int(bytes)
    }

    private static func duration(_ word: Substring) throws(ParseProblem) -> UInt64 {
        let units: [(String, UInt64)] = [("ns", 1), ("us", 1000), ("ms", 1_000_000), ("s", 1_000_000_000)]
        for (suffix, scale) in units where word.hasSuffix(suffix) {
            let digits = word.dropLast(suffix.count)
            guard let count = UInt64(digits, radix: 10) else { throw ParseProblem("bad duration '\(word.prefix(40))'") }
            let (nanoseconds, overflow) = count.multipliedReportingOverflow(by: scale)
            guard !overflow, nanoseconds <= maximumClockStep else {
                throw ParseProblem("clock step \(word) is longer than 60s")
            }
            return nanoseconds
        }
        throw ParseProblem("bad duration '\(word.prefix(40))' (a number with ns, us, ms or s)")
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result.removeLast() }
        return result
    }
}
