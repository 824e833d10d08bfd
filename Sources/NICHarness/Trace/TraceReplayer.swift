import NICCards
import NICCore
import NICTrace

/// What a successful replay did.
public struct ReplaySummary: Hashable, Sendable {
    public var model: CardModel
    public var operations: Int
    public var assertions: Int
    public var transmitted: Int
}

/// Runs traces against a fresh card each: the engine behind `vnic replay`, the fixtures' tests and the fuzzer.
public enum TraceReplayer {
    /// Parses and runs `text`.
    public static func run(_ text: String) throws(TraceFailure) -> ReplaySummary {
        try run(try TraceParser.parse(text))
    }

    /// Runs `trace`: `device` (and optionally `ram`, default 16M) come first, then the operations in order.
    public static func run(_ trace: Trace) throws(TraceFailure) -> ReplaySummary {
        var model: CardModel?
        var mac = MACAddress("52:54:00:12:34:56")!
        var ramSize = 16 << 20
        var options = CardOptions()
        var harness: CardHarness?
        var operations = 0
        var assertions = 0
        for line in trace.lines {
            switch line.operation {
            case .device(let chosen, let address, let chosenOptions):
                guard harness == nil, model == nil else {
                    throw .malformed(line: line.number, message: "'device' may appear once, before any operation")
                }
                guard chosen.isImplemented else {
                    throw .malformed(line: line.number, message: "card model \(chosen.rawValue) is not implemented yet")
                }
                model = chosen
                mac = address
                options = chosenOptions
                continue
            case .ram(let bytes):
                guard harness == nil else {
                    throw .malformed(line: line.number, message: "'ram' must come before the first operation")
                }
                ramSize = bytes
                continue
            default:
                break
            }
            if harness == nil {
                guard let model else {
                    throw .malformed(line: line.number, message: "no 'device' line before the first operation")
                }
                do throws(HarnessError) {
                    harness = try CardHarness(model: model, macAddress: mac, ramSize: ramSize, options: options)
                } catch {
                    throw .malformed(line: line.number, message: error.message)
                }
            }
            guard let harness else { continue }
            try execute(line, on: harness)
            operations += 1
            if line.operation.isAssertion { assertions += 1 }
        }
        guard let model else { throw .malformed(line: trace.lines.last?.number ?? 1, message: "no 'device' line") }
        return ReplaySummary(
            model: model, operations: operations, assertions: assertions, transmitted: harness?.transmitted.count ?? 0)
    }

    /// Runs one operation on `harness`.
    static func execute(_ line: Trace.Line, on harness: CardHarness) throws(TraceFailure) {
        let number = line.number
        func check(_ expect: TraceExpectation, _ actual: UInt64) throws(TraceFailure) {
            guard !expect.holds(for: actual) else { return }
            let expected: String
            switch expect {
            case .none: expected = "-"
            case .equals(let value): expected = Hex.number(value)
            case .masked(let mask, let value): expected = "\(Hex.number(value)) under mask \(Hex.number(mask))"
            }
            let shown = {
                if case .masked(let mask, _) = expect { return "\(Hex.number(actual & mask)) (\(Hex.number(actual)))" }
                return Hex.number(actual)
            }()
            throw .assertion(line: number, operation: line.operation.text, expected: expected, actual: shown)
        }
        let card = harness.card
        switch line.operation {
        case .device, .ram:
            return
        case .configWrite(let offset, let width, let value):
            card.configWrite(offset: offset, width: width, value: UInt32(truncatingIfNeeded: value))
        case .configRead(let offset, let width, let expect):
            try check(expect, UInt64(card.configRead(offset: offset, width: width)))
        case .barWrite(let space, let bar, let offset, let width, let value):
            try checkSpace(space, bar: bar, harness: harness, line: number)
            card.barWrite(bar, offset: offset, width: width, value: value)
            card.service()
        case .barRead(let space, let bar, let offset, let width, let expect):
            try checkSpace(space, bar: bar, harness: harness, line: number)
            let value = card.barRead(bar, offset: offset, width: width)
            card.service()
            try check(expect, value)
        case .memoryWrite(let address, let bytes):
            do throws(HarnessError) { try harness.ram.store(bytes, at: address) } catch {
                throw .malformed(line: number, message: error.message)
            }
        case .memoryFill(let address, let count, let byte):
            do throws(HarnessError) { try harness.ram.fill(byte, count: count, at: address) } catch {
                throw .malformed(line: number, message: error.message)
            }
        case .memoryExpect(let address, let bytes):
            let actual: [UInt8]
            do throws(HarnessError) { actual = try harness.ram.load(at: address, count: bytes.count) } catch {
                throw .malformed(line: number, message: error.message)
            }
            if actual != bytes {
                throw .assertion(
                    line: number, operation: "mem-expect \(Hex.number(address))", expected: Hex.encode(bytes),
                    actual: Hex.encode(actual))
            }
        case .receive(let frame):
            card.port.deliver(frame)
            card.service()
        case .transmitExpect(let frame):
            guard let actual = harness.transmitted.next() else {
                throw .assertion(line: number, operation: "tx-expect", expected: Hex.encode(frame), actual: "no frame")
            }
            if actual != frame {
                throw .assertion(
                    line: number, operation: "tx-expect", expected: Hex.encode(frame), actual: Hex.encode(actual))
            }
        case .transmitCount(let count):
            let actual = harness.transmitted.count
            if actual != count {
                throw .assertion(line: number, operation: "tx-count", expected: "\(count)", actual: "\(actual)")
            }
        case .interrupt(let level):
            if harness.interruptLine.level != level {
                throw .assertion(
                    line: number, operation: "irq", expected: level ? "1" : "0",
                    actual: harness.interruptLine.level ? "1" : "0")
            }
        case .msix(let vector, let count):
            let actual = harness.msix.take(vector: vector)
            if actual != count {
                throw .assertion(line: number, operation: "msix \(vector)", expected: "\(count)", actual: "\(actual)")
            }
        case .clock(let nanoseconds):
            harness.clock.advance(by: .nanoseconds(Int64(clamping: nanoseconds)))
            card.service()
        case .link(let up):
            card.cableConnected = up
            card.service()
        }
    }

    private static func checkSpace(_ space: BARSpace, bar: Int, harness: CardHarness, line: Int) throws(TraceFailure) {
        guard let actual = harness.space(ofBAR: bar) else {
            throw .malformed(line: line, message: "\(harness.model.rawValue) has no BAR \(bar)")
        }
        guard actual == space else {
            let name = actual == .io ? "an I/O" : "a memory"
            throw .malformed(
                line: line,
                message:
                    "BAR \(bar) of \(harness.model.rawValue) is \(name) BAR; use \(actual.rawValue)-read/\(actual.rawValue)-write"
            )
        }
    }
}
