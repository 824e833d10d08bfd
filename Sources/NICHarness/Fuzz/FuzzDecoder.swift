import Glibc
import NICCards
import NICCore
import NICTrace

/// Turns arbitrary bytes into a trace against a card: the fuzzer's input format. The same decoder turns a crash
/// input into a trace for `Fixtures/traces/regressions/`, so every finding replays with `vnic replay`.
///
/// Byte 0 picks the card (every implemented model, or those `VNIC_FUZZ_MODELS` names, comma-separated, to spend a run
/// on some cards; decode a finding with the same setting). The rest is a stream of operations, each an opcode byte and its
/// operands; running out of bytes ends the trace. Besides raw register, memory, frame, clock and link operations
/// there are macros, per chip family, that bring a card up the way a driver does, build plausible descriptors and
/// ring doorbells, so the fuzzer reaches the data paths quickly (PCnet here, the Intel cards in
/// `FuzzDecoder+E1000.swift`, virtio-net in `FuzzDecoder+Virtio.swift`).
public struct FuzzDecoder {
    /// Guest RAM for fuzz traces: small, so random addresses often hit it and sometimes miss it.
    public static let ramSize = 256 << 10
    /// At most this many operations per input.
    public static let maximumOperations = 512
    /// The cards inputs choose from: every implemented model, or the ones `VNIC_FUZZ_MODELS` names (unknown names are
    /// ignored; none left means all).
    public static let models: [CardModel] = {
        guard let raw = getenv("VNIC_FUZZ_MODELS") else { return CardModel.implemented }
        let names = String(cString: raw).split(separator: ",").map { $0.lowercased() }
        let chosen = CardModel.implemented.filter { names.contains($0.rawValue) }
        return chosen.isEmpty ? CardModel.implemented : chosen
    }()

    private var bytes: [UInt8]
    private var position = 0
    /// The card the input chose.
    private(set) var model = CardModel.am79c970a
    /// The rings the last virtio bring-up laid out.
    var virtio = VirtioFuzzState()

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Decodes `input` into a trace.
    public static func decode(_ input: [UInt8]) -> Trace {
        var decoder = FuzzDecoder(input)
        return decoder.run()
    }

    /// The prefix that marks an input as trace text rather than bytecode.
    static let textPrefix = Array("vnic-trace".utf8)

    /// The trace an input stands for: trace text as it is (so the fixtures seed the fuzzer and the parser gets
    /// fuzzed too), anything else decoded as bytecode. `nil` for text that does not parse.
    public static func trace(for input: [UInt8]) -> Trace? {
        guard input.starts(with: textPrefix) else { return decode(input) }
        guard let trace = try? TraceParser.parse(String(decoding: input, as: UTF8.self)) else { return nil }
        // A trace for a card outside the chosen ones is left out.
        if case .device(let model, _, _)? = trace.lines.first?.operation, !models.contains(model) { return nil }
        return trace
    }

    /// Replays `input`, ignoring assertion failures (the fuzzer looks for crashes, hangs and leaks). Text traces
    /// asking for more than 16M of RAM are skipped to keep iterations fast.
    public static func runOne(_ input: [UInt8]) {
        guard let trace = trace(for: input) else { return }
        for line in trace.lines {
            if case .ram(let bytes) = line.operation, bytes > 16 << 20 { return }
        }
        _ = try? TraceReplayer.run(trace)
    }

    mutating func byte() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func word(_ count: Int) -> UInt64? {
        var value: UInt64 = 0
        for i in 0..<count {
            guard let next = byte() else { return nil }
            value |= UInt64(next) << (8 * UInt64(i))
        }
        return value
    }

    mutating func data(maximum: Int) -> [UInt8]? {
        guard let length = byte() else { return nil }
        let count = min(Int(length) * maximum / 255, bytes.count - position)
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func width() -> Int? {
        guard let code = byte() else { return nil }
        return [1, 2, 4, 4][Int(code & 3)]
    }

    /// An address: usually inside RAM, sometimes anywhere in 32 bits.
    mutating func address() -> UInt64? {
        guard let selector = byte(), let raw = word(3) else { return nil }
        if selector & 0xF0 == 0xF0 { return raw << 8 | UInt64(selector) }
        return raw % UInt64(Self.ramSize)
    }

    private mutating func run() -> Trace {
        var lines: [Trace.Line] = []
        func emit(_ operation: TraceOperation) {
            lines.append(Trace.Line(number: lines.count + 2, operation: operation))
        }
        let models = Self.models
        let choice = Int(byte() ?? 0)
        model = models[choice % models.count]
        // The byte's higher part picks 1 to 4 queue pairs where the model has several (virtio-net's multiqueue).
        let queuePairs = 1 + (choice / models.count) % min(4, model.queuePairLimit)
        let mac = MACAddress("52:54:00:12:34:56")!
        emit(.device(model, mac: mac, options: CardOptions(queuePairs: queuePairs)))
        emit(.ram(bytes: Self.ramSize))
        var count = 0
        while count < Self.maximumOperations, let opcode = byte() {
            count += 1
            guard let operations = decodeOperation(opcode, mac: mac) else { break }
            operations.forEach(emit)
        }
        return Trace(lines: lines)
    }

    private mutating func decodeOperation(_ opcode: UInt8, mac: MACAddress) -> [TraceOperation]? {
        switch opcode % 14 {
        case 0:
            guard let offset = byte(), let width = width(), let value = word(4) else { return nil }
            let aligned = Int(offset) & ~(width - 1)
            return [.configWrite(offset: aligned, width: width, value: value & mask(width))]
        case 1:
            guard let offset = byte(), let width = width() else { return nil }
            return [.configRead(offset: Int(offset) & ~(width - 1), width: width, expect: .none)]
        case 2, 3, 4, 5, 10, 11, 12, 13:
            switch model {
            case .e82540em, .e82543gc, .e82545em: return e1000Operation(opcode)
            case .am79c970a, .am79c973: return pcnetOperation(opcode)
            case .virtio: return virtioOperation(opcode)
            }
        case 6:
            guard let address = address(), let payload = data(maximum: 64) else { return nil }
            return [.memoryWrite(address: address % UInt64(Self.ramSize), bytes: payload)]
        case 7:
            // A frame for the card: to its address, broadcast, multicast or random, of any length up to 2K.
            guard let kind = byte(), let lengthByte = word(2), let fill = byte() else { return nil }
            let length = Int(lengthByte % 2048)
            var frame: [UInt8]
            switch kind % 4 {
            case 0: frame = mac.bytes
            case 1: frame = MACAddress.broadcast.bytes
            case 2: frame = [0x01, 0x00, 0x5E, 0x00, 0x00, kind]
            default: frame = []
            }
            frame += (0..<max(0, length - frame.count)).map { UInt8(truncatingIfNeeded: $0 &+ Int(fill)) }
            return [.receive(Array(frame.prefix(length)))]
        case 8:
            guard let step = byte() else { return nil }
            return [.clock(nanoseconds: UInt64(step) * 50_000)]
        case 9:
            guard let state = byte() else { return nil }
            return [.link(up: state & 1 == 0)]
        default:
            return nil
        }
    }

    /// The PCnet family's operations: the I/O and memory windows, bring-up, descriptors, the transmit demand and CSR
    /// or BCR writes.
    private mutating func pcnetOperation(_ opcode: UInt8) -> [TraceOperation]? {
        switch opcode % 14 {
        case 2, 3:
            guard let offset = byte(), let width = width(), let value = word(4) else { return nil }
            let space: BARSpace = opcode % 14 == 2 ? .io : .memory
            return [
                .barWrite(
                    space, bar: space == .io ? 0 : 1, offset: UInt64(offset & 0x1F), width: width,
                    value: value & mask(width))
            ]
        case 4, 5:
            guard let offset = byte(), let width = width() else { return nil }
            let space: BARSpace = opcode % 14 == 4 ? .io : .memory
            return [
                .barRead(
                    space, bar: space == .io ? 0 : 1, offset: UInt64(offset & 0x1F), width: width,
                    expect: .none)
            ]
        case 10:
            return bringUp()
        case 11:
            return descriptor()
        case 12:
            // Transmit demand with interrupts enabled: CSR0 = TDMD | IENA through WIO.
            return csrWrite(0, 0x0048)
        default:
            guard let index = byte(), let value = word(2) else { return nil }
            if opcode & 0x80 == 0 { return csrWrite(Int(index), value) }
            return [
                .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: UInt64(index & 0x7F)),
                .barWrite(.io, bar: 0, offset: 0x16, width: 2, value: value),
            ]
        }
    }

    func mask(_ width: Int) -> UInt64 { width == 8 ? .max : (1 << (8 * UInt64(width))) - 1 }

    /// A CSR write through the word I/O ports: RAP, then RDP.
    private func csrWrite(_ index: Int, _ value: UInt64) -> [TraceOperation] {
        [
            .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: UInt64(index & 0x7F)),
            .barWrite(.io, bar: 0, offset: 0x10, width: 2, value: value & 0xFFFF),
        ]
    }

    /// Enable the PCI function, reset, choose a software style and ring sizes, write an initialization block and
    /// set INIT|STRT|IENA: a running chip in one opcode.
    private mutating func bringUp() -> [TraceOperation]? {
        guard let style = byte(), let lengths = byte(), let mode = word(2) else { return nil }
        let softwareStyle = UInt64([0, 2, 3, 1][Int(style & 3)])
        var block: [UInt8] = []
        let rlen = UInt32(lengths & 0x0F) % 10
        let tlen = UInt32(lengths >> 4) % 10
        let receiveRing: UInt32 = 0x1000
        let transmitRing: UInt32 = 0x3000
        func put16(_ value: UInt16) { block.appendLittleEndian16(value) }
        func put32(_ value: UInt32) { block.appendLittleEndian32(value) }
        put16(UInt16(mode & 0xFFFF) & ~0x0003)
        if softwareStyle == 0 {
            block += [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
            for _ in 0..<4 { put16(0xFFFF) }
            put32(receiveRing | min(rlen, 7) << 29)
            put32(transmitRing | min(tlen, 7) << 29)
        } else {
            block += [UInt8(rlen << 4), UInt8(tlen << 4), 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0]
            for _ in 0..<4 { put16(0xFFFF) }
            put32(receiveRing)
            put32(transmitRing)
        }
        return [
            .configWrite(offset: 4, width: 2, value: 0x0007),
            .barRead(.io, bar: 0, offset: 0x14, width: 2, expect: .none),
            .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: 20),
            .barWrite(.io, bar: 0, offset: 0x16, width: 2, value: softwareStyle),
            .memoryWrite(address: 0x100, bytes: block),
            .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: 1),
            .barWrite(.io, bar: 0, offset: 0x10, width: 2, value: 0x100),
            .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: 2),
            .barWrite(.io, bar: 0, offset: 0x10, width: 2, value: 0),
            .barWrite(.io, bar: 0, offset: 0x12, width: 2, value: 0),
            .barWrite(.io, bar: 0, offset: 0x10, width: 2, value: 0x0043),
        ]
    }

    /// A 16-byte descriptor in one of the rings bringUp() sets up, with OWN and fuzzer-chosen flags, buffer and
    /// length.
    private mutating func descriptor() -> [TraceOperation]? {
        guard let which = byte(), let flags = byte(), let length = word(2), let buffer = address() else { return nil }
        let ring: UInt64 = which & 0x80 == 0 ? 0x1000 : 0x3000
        let index = UInt64(which & 0x3F)
        let status = UInt16(0x80 | (flags & 0x7F)) << 8
        let byteCount = UInt16(truncatingIfNeeded: length) | 0xF000
        var body: [UInt8] = []
        let address32 = UInt32(truncatingIfNeeded: buffer)
        body.appendLittleEndian32(address32)
        body.appendLittleEndian16(byteCount)
        body.appendLittleEndian16(status)
        body += [0, 0, 0, 0, 0, 0, 0, 0]
        let stride: UInt64 = which & 0x40 == 0 ? 16 : 8
        return [.memoryWrite(address: ring + index * stride, bytes: stride == 16 ? body : Array(body.prefix(8)))]
    }
}
