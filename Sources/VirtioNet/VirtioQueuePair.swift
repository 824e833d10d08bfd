import NICCore

/// One receive queue and one transmit queue with everything their data path owns: chains, buffers, a finisher, the
/// frames steered to it and its counters. A pair touches no other pair's state, so pairs can be serviced on
/// different threads (see ``VirtioNetCard``'s threading contract).
package final class VirtioQueuePair {
    /// The pair's index: its queues are 2 × index (receive) and 2 × index + 1 (transmit).
    package let index: Int
    let receiveQueue: Virtqueue
    let transmitQueue: Virtqueue
    /// The card that owns this pair (it outlives its pairs; no reference counting on the data path).
    unowned(unsafe) var card: VirtioNetCard?

    /// Frames steered to this pair, waiting for receive buffers (a bounded, locked queue).
    let backlog = FramePort(queueCapacity: VirtioQueuePair.backlogCapacity)
    /// A frame that found no buffers; it goes first when the driver adds some.
    @exclusivity(unchecked) var stalled: InboundFrame?
    /// Whether the backlog may hold frames (set when one is queued, cleared when a drain finds it empty).
    @exclusivity(unchecked) var backlogUsed = false
    /// Whether frames were placed since the last ``closeReceiveBatch()``.
    @exclusivity(unchecked) var receiveBatchOpen = false

    let transmitChain = DescriptorChain()
    let firstReceiveChain = DescriptorChain()
    /// Chains beyond the first of a mergeable frame.
    @exclusivity(unchecked) var extraReceiveChains: [DescriptorChain] = []
    /// Gather buffer for one transmitted frame with its header.
    let transmitBuffer: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) var finisher = FrameFinisher()
    /// Whether the last transmit pass stopped at its budget with work left.
    @exclusivity(unchecked) var transmitPending = false
    /// Re-entrancy guard: a receive or transmit pass of this pair is running.
    @exclusivity(unchecked) var busy = false
    /// Work that arrived while ``busy``; the running pass picks it up before it returns.
    @exclusivity(unchecked) var rerun = false
    /// The pair's counters.
    @exclusivity(unchecked) package internal(set) var statistics = VirtioQueuePairStatistics()

    /// The largest frame (with its header) the transmitter gathers: a 64 KiB GSO frame plus headers.
    static let transmitBufferSize = 65_536 + 256
    static let backlogCapacity = 256
    /// Transmit passes per doorbell before the rest waits for the next ``VirtioNetCard/service()``.
    static let transmitRounds = 4

    init(index: Int, receive: Virtqueue, transmit: Virtqueue) {
        self.index = index
        receiveQueue = receive
        transmitQueue = transmit
        transmitBuffer = .allocate(byteCount: Self.transmitBufferSize, alignment: 16)
        transmitBuffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { transmitBuffer.deallocate() }

    /// Back to the reset state: nothing pending, nothing stalled.
    func reset() {
        stalled = nil
        while backlog.nextInbound() != nil {}
        backlogUsed = false
        receiveBatchOpen = false
        transmitPending = false
    }

    /// Receives what is waiting and transmits what the driver queued.
    func service() {
        receivePending()
        if transmitPending { transmitPass() }
    }

    /// Runs `work` with the re-entrancy guard up, then (a bounded number of times) whatever was deferred meanwhile.
    /// Work still deferred after that waits for the next ``service()``.
    func exclusively(_ work: () -> Void) {
        busy = true
        work()
        var rounds = 0
        while rerun, rounds < 4 {
            rerun = false
            rounds += 1
            busy = false
            if hasWaitingFrames { receivePending() }
            if transmitPending { transmitPass() }
            busy = true
        }
        busy = false
    }

    /// Signals used buffers on `queue` and counts the outcome.
    func signal(_ queue: Virtqueue, wanted: Bool, card: VirtioNetCard) {
        if wanted {
            statistics[.interruptsSent] &+= 1
            card.signalQueue(queue)
        } else {
            statistics[.interruptsSuppressed] &+= 1
        }
    }
}

/// A queue pair as a host sees it: a Sendable handle that a host may move to a thread of its own and service there,
/// concurrently with other pairs' handles, under ``VirtioNetCard``'s threading contract (MSI-X with a vector per
/// queue, an attachment and MSI-X sink that take concurrent calls, no configuration call meanwhile). The handle keeps
/// its card alive.
public struct VirtioQueuePairHandle: @unchecked Sendable {
    private let card: VirtioNetCard
    private let pair: VirtioQueuePair

    init(card: VirtioNetCard, pair: VirtioQueuePair) {
        self.card = card
        self.pair = pair
    }

    /// The pair's index: its queues are 2 × index (receive) and 2 × index + 1 (transmit).
    public var index: Int { pair.index }

    /// Services this pair only: its pending receive frames and its transmit ring (``VirtioNetCard/servicePair(_:)``).
    public func service() { card.servicePair(pair.index) }

    /// The pair's counters. Read them on the pair's thread, or when it is idle.
    public var statistics: VirtioQueuePairStatistics { pair.statistics }
}
