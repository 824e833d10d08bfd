import NICCards
import NICCore

/// Which address space a BAR access names: `mmio-*` lines name memory BARs, `io-*` lines I/O BARs.
public enum BARSpace: String, Hashable, Sendable {
    case memory = "mmio"
    case io = "io"
}

/// What a read line asserts.
public enum TraceExpectation: Hashable, Sendable {
    /// Nothing: the read is performed for its side effects.
    case none
    /// `= v`: the value read equals `v`.
    case equals(UInt64)
    /// `& mask = v`: the value read, masked, equals `v`.
    case masked(mask: UInt64, value: UInt64)

    /// Whether `actual` satisfies the expectation.
    public func holds(for actual: UInt64) -> Bool {
        switch self {
        case .none: return true
        case .equals(let value): return actual == value
        case .masked(let mask, let value): return actual & mask == value
        }
    }

    var text: String {
        switch self {
        case .none: return ""
        case .equals(let value): return " = " + Hex.number(value)
        case .masked(let mask, let value): return " & \(Hex.number(mask)) = \(Hex.number(value))"
        }
    }
}

/// One operation of a register-level trace (format v1).
public enum TraceOperation: Hashable, Sendable {
    case device(CardModel, mac: MACAddress, options: CardOptions = CardOptions())
    case ram(bytes: Int)
    case configWrite(offset: Int, width: Int, value: UInt64)
    case configRead(offset: Int, width: Int, expect: TraceExpectation)
    case barWrite(BARSpace, bar: Int, offset: UInt64, width: Int, value: UInt64)
    case barRead(BARSpace, bar: Int, offset: UInt64, width: Int, expect: TraceExpectation)
    case memoryWrite(address: UInt64, bytes: [UInt8])
    case memoryFill(address: UInt64, count: Int, byte: UInt8)
    case memoryExpect(address: UInt64, bytes: [UInt8])
    case receive([UInt8])
    case transmitExpect([UInt8])
    case transmitCount(Int)
    case interrupt(Bool)
    case msix(vector: Int, count: Int)
    case clock(nanoseconds: UInt64)
    case link(up: Bool)

    /// Whether the line asserts something.
    public var isAssertion: Bool {
        switch self {
        case .configRead(_, _, let expect), .barRead(_, _, _, _, let expect): return expect != .none
        case .memoryExpect, .transmitExpect, .transmitCount, .interrupt, .msix: return true
        default: return false
        }
    }

    /// The line as the trace format writes it.
    public var text: String {
        switch self {
        case .device(let model, let mac, let options):
            return "device \(model.rawValue) mac=\(mac)" + (options.text.isEmpty ? "" : " " + options.text)
        case .ram(let bytes):
            if bytes % (1 << 20) == 0 { return "ram \(bytes >> 20)M" }
            if bytes % 1024 == 0 { return "ram \(bytes >> 10)K" }
            return "ram \(bytes)"
        case .configWrite(let offset, let width, let value):
            return "cfg-write \(Hex.number(offset)) \(width) \(Hex.number(value))"
        case .configRead(let offset, let width, let expect):
            return "cfg-read \(Hex.number(offset)) \(width)" + expect.text
        case .barWrite(let space, let bar, let offset, let width, let value):
            return "\(space.rawValue)-write \(bar) \(Hex.number(offset)) \(width) \(Hex.number(value))"
        case .barRead(let space, let bar, let offset, let width, let expect):
            return "\(space.rawValue)-read \(bar) \(Hex.number(offset)) \(width)" + expect.text
        case .memoryWrite(let address, let bytes): return "mem-write \(Hex.number(address)) \(payload(bytes))"
        case .memoryFill(let address, let count, let byte):
            return "mem-fill \(Hex.number(address)) \(count) \(Hex.number(byte))"
        case .memoryExpect(let address, let bytes): return "mem-expect \(Hex.number(address)) \(payload(bytes))"
        case .receive(let bytes): return "rx \(payload(bytes))"
        case .transmitExpect(let bytes): return "tx-expect \(payload(bytes))"
        case .transmitCount(let count): return "tx-count = \(count)"
        case .interrupt(let level): return "irq = \(level ? 1 : 0)"
        case .msix(let vector, let count): return "msix \(vector) = \(count)"
        case .clock(let nanoseconds):
            if nanoseconds % 1_000_000_000 == 0 { return "clock \(nanoseconds / 1_000_000_000)s" }
            if nanoseconds % 1_000_000 == 0 { return "clock \(nanoseconds / 1_000_000)ms" }
            if nanoseconds % 1000 == 0 { return "clock \(nanoseconds / 1000)us" }
            return "clock \(nanoseconds)ns"
        case .link(let up): return "link \(up ? "up" : "down")"
        }
    }
}

/// Hex data as a trace line writes it: `-` when empty.
private func payload(_ bytes: [UInt8]) -> String { bytes.isEmpty ? "-" : Hex.encode(bytes) }

/// A parsed trace: its operations with the line numbers they came from.
public struct Trace: Hashable, Sendable {
    /// One operation and its line.
    public struct Line: Hashable, Sendable {
        public var number: Int
        public var operation: TraceOperation
        public var comment: String?

        public init(number: Int, operation: TraceOperation, comment: String? = nil) {
            self.number = number
            self.operation = operation
            self.comment = comment
        }
    }

    /// The format's header line.
    public static let header = "vnic-trace 1"

    public var lines: [Line]

    public init(lines: [Line]) { self.lines = lines }

    /// The trace as text, header first, one operation per line.
    public var text: String {
        var writer = TraceWriter()
        for line in lines { writer.append(line.operation, comment: line.comment) }
        return writer.text
    }

    /// The largest guest RAM a trace may declare (and a replay maps).
    public static let maximumRAMSize = 1 << 30
}

/// Why a trace did not pass.
public enum TraceFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The trace itself is wrong: bad syntax, impossible values, an operation the device cannot take (exit 2).
    case malformed(line: Int, message: String)
    /// An assertion did not hold (exit 1).
    case assertion(line: Int, operation: String, expected: String, actual: String)

    /// The exit status `vnic replay` uses for this failure.
    public var exitStatus: Int32 {
        switch self {
        case .malformed: return 2
        case .assertion: return 1
        }
    }

    public var description: String {
        switch self {
        case .malformed(let line, let message): return "line \(line): \(message)"
        case .assertion(let line, let operation, let expected, let actual):
            return "line \(line): \(operation): expected \(expected), actual \(actual)"
        }
    }
}
