import Glibc
import NICCards
import NICCore
import NICTrace

/// Writes what a card did with a real guest as a trace (format v1) that `vnic replay` reproduces with no guest.
///
/// The session is cut into events (one config or BAR access, one clock step, one service of the frame port). For
/// each event the recorder writes, in order: `mem-write` lines for the guest memory the card read (so replay finds
/// the same bytes; bytes the card itself wrote earlier in the event are left out), the event's own line (`rx` for
/// each frame the card took), `mem-expect` lines for what the card wrote, `tx-expect` for each frame it sent, and
/// `irq`/`msix` lines for interrupts. The card's clock moves only at event boundaries (see ``CardSession``), so
/// replay's manual clock reproduces every timer.
final class SessionRecorder: FrameTap, @unchecked Sendable {
    /// Why a recording could not be written.
    struct Failure: Error {
        var message: String
    }

    /// The most trace text kept; a longer session is cut short with a comment saying so.
    static let maximumBytes = 512 << 20
    /// The smallest RAM a recorded trace declares.
    static let minimumRAM: UInt64 = 1 << 20

    private let path: String
    private let device: TraceOperation
    private var body = TraceWriter(limit: SessionRecorder.maximumBytes)
    private var highestAddress: UInt64 = 0

    // The current event.
    private var reads: [(address: UInt64, bytes: [UInt8])] = []
    private var writes: [(address: UInt64, bytes: [UInt8])] = []
    private var received: [[UInt8]] = []
    private var transmitted: [[UInt8]] = []
    private var messages: [Int: Int] = [:]
    private var interruptLevel = false
    private var recordedInterruptLevel = false

    /// Opens `path` for writing (so a bad path fails now, not at the end).
    init(path: String, model: CardModel, macAddress: MACAddress, options: CardOptions) throws(Failure) {
        guard let file = fopen(path, "w") else {
            throw Failure(message: "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        fclose(file)
        self.path = path
        device = .device(model, mac: macAddress, options: options)
    }

    // MARK: Observations (card thread)

    func noteRead(_ address: UInt64, _ buffer: UnsafeRawBufferPointer) {
        note(address, count: buffer.count)
        // A range that would wrap the address space cannot be replayed (the DMA gate refuses those before here).
        guard let end = Self.end(address, buffer.count) else { return }
        // Leave out bytes the card wrote earlier in this event: replay produces those itself.
        var pieces: [Range<UInt64>] = [address..<end]
        for write in writes {
            guard let writtenEnd = Self.end(write.address, write.bytes.count) else { continue }
            let written = write.address..<writtenEnd
            pieces = pieces.flatMap { piece -> [Range<UInt64>] in
                guard piece.overlaps(written) else { return [piece] }
                var rest: [Range<UInt64>] = []
                if piece.lowerBound < written.lowerBound { rest.append(piece.lowerBound..<written.lowerBound) }
                if written.upperBound < piece.upperBound { rest.append(written.upperBound..<piece.upperBound) }
                return rest
            }
        }
        for piece in pieces where !piece.isEmpty {
            let start = Int(piece.lowerBound - address)
            let end = Int(piece.upperBound - address)
            reads.append((piece.lowerBound, Array(buffer[start..<end])))
        }
    }

    func noteWrite(_ address: UInt64, _ buffer: UnsafeRawBufferPointer) {
        note(address, count: buffer.count)
        writes.append((address, Array(buffer)))
    }

    func noteReceived(_ frame: [UInt8]) { received.append(frame) }

    func noteInterrupt(_ level: Bool) { interruptLevel = level }

    func noteMSIX(_ vector: Int) { messages[vector, default: 0] += 1 }

    func observe(_ frame: UnsafeRawBufferPointer, direction: FrameDirection) {
        if direction == .transmitted { transmitted.append(Array(frame)) }
    }

    /// The end of `count` bytes at `address`, or `nil` when they would wrap the address space.
    private static func end(_ address: UInt64, _ count: Int) -> UInt64? {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        return overflow ? nil : end
    }

    private func note(_ address: UInt64, count: Int) {
        highestAddress = max(highestAddress, Self.end(address, count) ?? .max)
    }

    // MARK: Events

    func beginEvent() {
        reads.removeAll(keepingCapacity: true)
        writes.removeAll(keepingCapacity: true)
        received.removeAll(keepingCapacity: true)
        transmitted.removeAll(keepingCapacity: true)
        messages.removeAll(keepingCapacity: true)
    }

    /// Writes the event's lines; `operation` is the event's own line (`nil` for a service or a timer run, whose
    /// lines are the frames the card took).
    func endEvent(_ operation: TraceOperation?) {
        for (address, bytes) in Self.merged(reads) { append(.memoryWrite(address: address, bytes: bytes)) }
        if let operation { append(operation) }
        for frame in received { append(.receive(frame)) }
        for (address, bytes) in Self.merged(writes) { append(.memoryExpect(address: address, bytes: bytes)) }
        for frame in transmitted { append(.transmitExpect(frame)) }
        if interruptLevel != recordedInterruptLevel {
            recordedInterruptLevel = interruptLevel
            append(.interrupt(interruptLevel))
        }
        for vector in messages.keys.sorted() { append(.msix(vector: vector, count: messages[vector] ?? 0)) }
    }

    /// Joins accesses that continue each other, keeping their order; a later access to the same bytes wins when
    /// the lines are replayed in order.
    static func merged(_ accesses: [(address: UInt64, bytes: [UInt8])]) -> [(UInt64, [UInt8])] {
        var result: [(UInt64, [UInt8])] = []
        for access in accesses {
            if let last = result.last, last.0 &+ UInt64(last.1.count) == access.address {
                result[result.count - 1].1 += access.bytes
            } else {
                result.append((access.address, access.bytes))
            }
        }
        return result
    }

    /// Adds a comment line.
    func comment(_ text: String) { body.comment(text) }

    private func append(_ operation: TraceOperation) { body.append(operation) }

    // MARK: Output

    /// Writes the trace file: the header, a `ram` line covering every address the card touched, and the body.
    func finish() throws(Failure) {
        let ramLimit = UInt64(Trace.maximumRAMSize)
        var ram = Self.minimumRAM
        while ram < highestAddress && ram < ramLimit { ram <<= 1 }
        var trace = TraceWriter()
        trace.append(device)
        trace.append(.ram(bytes: Int(ram)))
        if highestAddress > ramLimit {
            trace.comment("the card touched guest memory up to \(Hex.number(highestAddress)), past what replay can map")
        }
        trace.append(contentsOf: body)
        do throws(TraceWriter.FileError) { try trace.write(to: path) } catch { throw Failure(message: error.message) }
    }
}
