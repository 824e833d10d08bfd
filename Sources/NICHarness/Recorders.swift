import NICCore
import Synchronization

/// An INTx line that remembers its level and counts rising edges.
public final class RecordingInterruptLine: InterruptLine {
    /// The current level.
    public private(set) var level = false
    /// Rising edges seen.
    public private(set) var assertions = 0

    public init() {}

    public func setLevel(_ asserted: Bool) {
        if asserted && !level { assertions += 1 }
        level = asserted
    }
}

/// An MSI-X sink that counts messages per vector.
public final class RecordingMSIX: MSIXSink {
    /// Messages per vector since the last ``take(vector:)``.
    public private(set) var pending: [Int: Int] = [:]
    /// Messages per vector in total.
    public private(set) var total: [Int: Int] = [:]

    public init() {}

    public func signal(vector: Int, address: UInt64, data: UInt32) {
        pending[vector, default: 0] += 1
        total[vector, default: 0] += 1
    }

    /// Returns and resets the count of messages on `vector` since the last call.
    public func take(vector: Int) -> Int {
        defer { pending[vector] = nil }
        return pending[vector] ?? 0
    }
}

/// An attachment that keeps every frame the card transmits, in order, and offers carrier.
public final class TransmitRecorder: NetworkAttachment, @unchecked Sendable {
    private let state = Mutex<(frames: [[UInt8]], cursor: Int, total: Int)>(([], 0, 0))
    /// The most frames kept; older ones are forgotten (the count still counts them).
    public let capacity: Int

    public init(capacity: Int = 4096) { self.capacity = capacity }

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        let bytes = Array(frame)
        state.withLock { state in
            state.total += 1
            if state.frames.count - state.cursor >= capacity { state.cursor += 1 }
            state.frames.append(bytes)
            if state.cursor > 1024 {
                state.frames.removeFirst(state.cursor)
                state.cursor = 0
            }
        }
    }

    public func didAttach(_ port: FramePort) { port.setCarrier(true) }

    /// Frames transmitted so far.
    public var count: Int { state.withLock { $0.total } }

    /// The oldest frame not yet taken.
    public func next() -> [UInt8]? {
        state.withLock { state -> [UInt8]? in
            guard state.cursor < state.frames.count else { return nil }
            defer { state.cursor += 1 }
            return state.frames[state.cursor]
        }
    }
}
