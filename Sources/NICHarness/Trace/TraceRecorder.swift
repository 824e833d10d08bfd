import NICCards
import NICCore
import NICTrace

/// Collects trace lines as a harness runs, and writes them in format v1.
public final class TraceRecorder {
    /// The recorded lines so far.
    public private(set) var trace = Trace(lines: [])

    /// Starts a recording with the `device` and `ram` lines; `title` becomes the first line's comment.
    public init(
        model: CardModel, macAddress: MACAddress, ramSize: Int, options: CardOptions = CardOptions(),
        title: String? = nil
    ) {
        append(.device(model, mac: macAddress, options: options), comment: title)
        append(.ram(bytes: ramSize))
    }

    /// Starts recording everything `harness` does from now on. Record from the harness's creation: replay starts
    /// from zeroed RAM and a card fresh from reset.
    @discardableResult
    public static func attach(to harness: CardHarness, title: String? = nil) -> TraceRecorder {
        let recorder = TraceRecorder(
            model: harness.model, macAddress: harness.card.macAddress, ramSize: harness.ram.size,
            options: harness.options, title: title)
        harness.recorder = recorder
        return recorder
    }

    /// Appends one operation.
    public func append(_ operation: TraceOperation, comment: String? = nil) {
        trace.lines.append(Trace.Line(number: trace.lines.count + 2, operation: operation, comment: comment))
    }

    /// The recording as trace text.
    public var text: String { trace.text }
}
