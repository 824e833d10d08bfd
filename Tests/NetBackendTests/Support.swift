import Foundation
import NICCore
import Synchronization

/// A locally administered unicast address ending in `last`.
func mac(_ last: UInt8, _ high: UInt8 = 0) -> MACAddress {
    MACAddress(rawValue: 0x0200_0000_0000 | UInt64(high) << 8 | UInt64(last))
}

/// An Ethernet frame from `source` to `destination` with an experimental EtherType and `tag` as its payload, padded
/// to the 60-byte minimum.
func frame(to destination: MACAddress, from source: MACAddress, tag: UInt32 = 0, length: Int = 60) -> [UInt8] {
    var bytes = destination.bytes + source.bytes + [0x88, 0xB5]
    bytes += (0..<4).map { UInt8(truncatingIfNeeded: tag >> (24 - 8 * $0)) }
    if bytes.count < length { bytes += [UInt8](repeating: 0, count: length - bytes.count) }
    return bytes
}

/// The tag a frame built by ``frame(to:from:tag:length:)`` carries.
func tag(of bytes: [UInt8]) -> UInt32 {
    bytes.bigEndian32(at: 14)
}

extension FramePort {
    /// Transmits `bytes` as the card would.
    func send(_ bytes: [UInt8], metadata: FrameMetadata = .none) {
        bytes.withUnsafeBytes { transmit($0, metadata: metadata) }
    }

    /// Takes every queued frame, acknowledging the pending work first as a card does.
    func drain() -> [[UInt8]] {
        acknowledgeWork()
        var frames: [[UInt8]] = []
        while frames.count < 1_000_000, let next = nextInbound() { frames.append(next.bytes) }
        return frames
    }

    /// Waits (bounded) until at least `count` frames are queued for the card, and returns every queued frame.
    func receive(atLeast count: Int = 1, timeout: Double = 3) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        let deadline = Date().addingTimeInterval(timeout)
        while frames.count < count, Date() < deadline {
            frames += drain()
            if frames.count < count { usleep(2000) }
        }
        return frames + drain()
    }

    /// The first frame queued for the card within `timeout` for which `match` holds; the others are taken and
    /// dropped (a namespace's stack sends router solicitations and the like of its own).
    func receive(timeout: Double = 3, where match: ([UInt8]) -> Bool) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            acknowledgeWork()
            for _ in 0..<10_000 {
                guard let next = nextInbound() else { break }
                if match(next.bytes) { return next.bytes }
            }
            usleep(2000)
        } while Date() < deadline
        return nil
    }
}

/// A value several threads share behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { storage.withLock { body(&$0) } }
    var value: Value { storage.withLock { $0 } }
}
