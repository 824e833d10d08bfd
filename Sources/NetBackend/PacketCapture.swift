import Glibc
import NICCore
import Synchronization

/// Writes every frame through a port, both directions, to a pcap file (what VirtualBox's `--nictrace` does).
///
/// Add it with `port.addTap(capture)`; the file is a classic libpcap file with nanosecond timestamps and link type
/// Ethernet, which `tcpdump -r` and Wireshark read. One capture may tap several ports. Records are written in the
/// order the frames pass, with timestamps that never go backwards.
public final class PacketCapture: FrameTap {
    private struct State {
        var lastTimestamp: UInt64 = 0
        var frames: UInt64 = 0
        var closed = false
        var droppedAfterClose: UInt64 = 0
    }

    private let writer: PcapWriter
    private let state = Mutex(State())
    private let timestamp: @Sendable () -> UInt64

    /// The file being written.
    public let path: String

    /// Creates (or truncates) the file at `path`. Frames longer than `snapshotLength` are truncated in the file.
    /// `timestamp` gives each record's time in nanoseconds since the Unix epoch; the wall clock by default.
    public init(
        path: String, snapshotLength: Int = 65_535, timestamp: (@Sendable () -> UInt64)? = nil
    ) throws(PcapError) {
        writer = try PcapWriter(path: path, snapshotLength: snapshotLength)
        self.path = path
        self.timestamp = timestamp ?? Self.wallClockNanoseconds
    }

    /// The snapshot length written in the file header.
    public var snapshotLength: Int { writer.snapshotLength }

    /// Frames written so far.
    public var capturedFrames: UInt64 { state.withLock { $0.frames } }

    /// Frames that could not be written to the file (a full disk): the capture's drop counter.
    public var failedWrites: UInt64 { writer.failedWrites }

    /// Frames seen after ``close()``, not written.
    public var droppedAfterClose: UInt64 { state.withLock { $0.droppedAfterClose } }

    /// The counters by name.
    public var counters: [Counter] {
        [
            Counter("captured", capturedFrames), Counter("write_failures", failedWrites),
            Counter("dropped_after_close", droppedAfterClose),
        ]
    }

    public func observe(_ frame: UnsafeRawBufferPointer, direction: FrameDirection) {
        state.withLock { state in
            guard !state.closed else {
                state.droppedAfterClose += 1
                return
            }
            let stamp = max(timestamp(), state.lastTimestamp)
            state.lastTimestamp = stamp
            state.frames += 1
            writer.write(frame, timestampNanoseconds: stamp)
        }
    }

    /// Closes the file; frames seen afterwards are not written. Remove the tap from its ports too.
    public func close() {
        state.withLock { state in
            state.closed = true
            writer.close()
        }
    }

    private static func wallClockNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
