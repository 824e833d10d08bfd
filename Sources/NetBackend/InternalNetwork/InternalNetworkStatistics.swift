import NICCore

/// A snapshot of an ``InternalNetwork``'s counters.
///
/// Every frame a port transmits into the network ends in exactly one of ``droppedTooShort``, ``droppedTooLong``,
/// ``droppedUnknownPort``, ``droppedSamePort``, ``framesSwitched`` and ``framesFlooded``. Every copy the network
/// hands to a destination port ends in exactly one of ``framesDelivered`` and ``droppedQueueFull``.
public struct InternalNetworkStatistics: Hashable, Sendable {
    /// Frames ports transmitted into the network.
    public var framesIn: UInt64 = 0
    /// Unicast frames to a learned address, sent to that address's port only.
    public var framesSwitched: UInt64 = 0
    /// Broadcast, multicast and unknown-unicast frames sent to every other port.
    public var framesFlooded: UInt64 = 0
    /// Extra copies of switched frames given to promiscuous ports, as the policy allows.
    public var promiscuousCopies: UInt64 = 0
    /// Copies a destination port accepted into its inbound queue.
    public var framesDelivered: UInt64 = 0
    /// Frames shorter than an Ethernet header (14 bytes).
    public var droppedTooShort: UInt64 = 0
    /// Frames longer than the network's maximum frame length.
    public var droppedTooLong: UInt64 = 0
    /// Frames transmitted by a port that is not attached to the network.
    public var droppedUnknownPort: UInt64 = 0
    /// Unicast frames to an address learned on the sending port itself (never looped back).
    public var droppedSamePort: UInt64 = 0
    /// Copies a destination port refused because its inbound queue was full.
    public var droppedQueueFull: UInt64 = 0
    /// Learned addresses evicted from the full MAC table to make room for new ones.
    public var macTableEvictions: UInt64 = 0

    /// Creates a snapshot with every counter at zero.
    public init() {}

    /// The counters by name, for display.
    public var counters: [Counter] {
        [
            Counter("frames_in", framesIn),
            Counter("switched", framesSwitched),
            Counter("flooded", framesFlooded),
            Counter("promiscuous_copies", promiscuousCopies),
            Counter("delivered", framesDelivered),
            Counter("drop_too_short", droppedTooShort),
            Counter("drop_too_long", droppedTooLong),
            Counter("drop_unknown_port", droppedUnknownPort),
            Counter("drop_same_port", droppedSamePort),
            Counter("drop_queue_full", droppedQueueFull),
            Counter("mac_table_evictions", macTableEvictions),
        ]
    }
}
