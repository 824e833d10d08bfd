import NICCore
import Synchronization

/// "Not attached": the card is present but its cable leads nowhere.
///
/// The port's carrier stays down, and every frame the card transmits anyway is dropped and counted. One instance may
/// serve several ports; its counter sums them.
public final class NullAttachment: NetworkAttachment {
    private let dropped = Atomic<UInt64>(0)

    /// Creates an attachment with its drop counter at zero.
    public init() {}

    /// Frames the attached cards transmitted, all of them dropped.
    public var droppedFrames: UInt64 { dropped.load(ordering: .relaxed) }

    /// The counters by name.
    public var counters: [Counter] { [Counter("drop_not_attached", droppedFrames)] }

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        dropped.add(1, ordering: .relaxed)
    }

    public func didAttach(_ port: FramePort) {
        port.setCarrier(false)
    }
}
