import Synchronization

/// A frame on its way to a card.
public struct InboundFrame: Sendable {
    /// The frame from destination address to payload end, without FCS.
    public var bytes: [UInt8]
    /// Offload state the backend attached.
    public var metadata: FrameMetadata

    public init(bytes: [UInt8], metadata: FrameMetadata = .none) {
        self.bytes = bytes
        self.metadata = metadata
    }
}

/// Where a card meets its attachment, as QEMU's devices meet `NetClientInfo`.
///
/// The card calls ``transmit(_:metadata:)`` on its own thread. Backends call ``deliver(_:metadata:)`` and
/// ``setCarrier(_:)`` from any thread: frames wait in a bounded queue until the card's thread drains it, and a full
/// queue drops the frame and counts it instead of blocking the backend. ``onWork`` tells the host that the card has
/// something to drain, so it can schedule ``NetworkCard/service()`` on the card's thread.
public final class FramePort: @unchecked Sendable {
    /// The inbound queue's default capacity in frames.
    public static let defaultQueueCapacity = 256

    /// The inbound ring's indices; the frames live in ``slots``, which only code holding the lock touches.
    private struct Queue {
        var head = 0
        var count = 0
        /// Frames accepted so far (counted under the lock the delivery takes anyway).
        var accepted: UInt64 = 0
    }

    private let capacity: Int
    /// The inbound ring: `capacity` slots, the `count` from `head` (wrapping) initialised. Guarded by ``queue``.
    private let slots: UnsafeMutablePointer<InboundFrame>
    /// Card-thread scratch that ``drainInbound(limit:_:)`` moves a batch into, so the lock is held only for the move.
    private let drained: UnsafeMutablePointer<InboundFrame>
    private let queue: Mutex<Queue>
    private let work = Atomic<Bool>(false)
    private let carrierUp = Atomic<Bool>(false)
    private let inboundDropCount = Atomic<UInt64>(0)
    private let taps = Mutex<[any FrameTap]>([])
    private let tapCount = Atomic<Int>(0)
    // The callback lives in a class box: a function value stored directly in a Mutex is re-abstracted on every
    // `withLock { $0 }` and the write-back wraps it in two more thunks each time, so every signal got slower.
    private let wakeup = Mutex<WakeupCallback?>(nil)

    // Card-thread state.
    @exclusivity(unchecked) private var attachmentStorage: (any NetworkAttachment)?
    @exclusivity(unchecked) private var promiscuous = false
    /// Frames the card transmitted into an attachment. Counted atomically: virtio-net queue pairs may transmit on
    /// several threads at once (see ``transmit(_:metadata:)``).
    public var transmitted: UInt64 { transmittedCount.load(ordering: .relaxed) }
    /// Frames the card transmitted while nothing was attached (dropped).
    public var transmittedUnattached: UInt64 { transmittedUnattachedCount.load(ordering: .relaxed) }
    private let transmittedCount = Atomic<UInt64>(0)
    private let transmittedUnattachedCount = Atomic<UInt64>(0)
    /// Sees every frame the card takes from the inbound queue, on the card's thread, in the order the card takes them
    /// (session recording uses it; taps see frames when they are queued).
    @exclusivity(unchecked) public var onDequeue: ((InboundFrame) -> Void)?
    /// A ``drainInbound(limit:_:)`` batch is being handed out (``drained`` is in use).
    @exclusivity(unchecked) private var draining = false

    /// Creates a port whose inbound queue holds `capacity` frames (at least 1).
    public init(queueCapacity capacity: Int = FramePort.defaultQueueCapacity) {
        self.capacity = max(1, capacity)
        slots = .allocate(capacity: self.capacity)
        drained = .allocate(capacity: self.capacity)
        queue = Mutex(Queue())
    }

    deinit {
        let (head, count) = queue.withLock { ($0.head, $0.count) }
        for i in 0..<count { (slots + (head + i) % capacity).deinitialize(count: 1) }
        slots.deallocate()
        drained.deallocate()
    }

    // MARK: Host side

    /// The attachment frames go to, if any.
    public var attachment: (any NetworkAttachment)? { attachmentStorage }

    /// Attaches the port to `attachment`, detaching it from the previous one. Carrier starts down; the attachment
    /// raises it.
    public func attach(_ attachment: any NetworkAttachment) {
        detach()
        attachmentStorage = attachment
        attachment.didAttach(self)
        if promiscuous { attachment.promiscuousModeChanged(true, on: self) }
    }

    /// Detaches the port: link down, frames from the card are dropped and counted.
    public func detach() {
        guard let old = attachmentStorage else { return }
        attachmentStorage = nil
        old.didDetach(self)
        setCarrier(false)
    }

    /// Called from any thread when frames or a link change start waiting for the card's thread: once until the card
    /// calls ``acknowledgeWork()``, however many frames arrive meanwhile.
    public var onWork: (@Sendable () -> Void)? {
        get { wakeup.withLock { $0 }?.action }
        set {
            let callback = newValue.map(WakeupCallback.init)
            wakeup.withLock { $0 = callback }
        }
    }

    /// Adds a tap that sees every frame through the port.
    public func addTap(_ tap: any FrameTap) {
        let count = taps.withLock { taps -> Int in
            taps.append(tap)
            return taps.count
        }
        tapCount.store(count, ordering: .relaxed)
    }

    /// Removes a tap added with ``addTap(_:)``.
    public func removeTap(_ tap: any FrameTap) {
        let count = taps.withLock { taps -> Int in
            taps.removeAll { $0 === tap }
            return taps.count
        }
        tapCount.store(count, ordering: .relaxed)
    }

    // MARK: Backend side (any thread)

    /// Whether the attachment offers a link (a cable with something at the other end).
    public var carrier: Bool { carrierUp.load(ordering: .acquiring) }

    /// Sets the attachment's link state; the card applies it on its next ``NetworkCard/service()``.
    public func setCarrier(_ up: Bool) {
        let old = carrierUp.exchange(up, ordering: .acquiringAndReleasing)
        if old != up { signalWork() }
    }

    /// Queues `bytes` for the card. Returns `false`, and counts a drop, when the queue is full.
    @discardableResult
    public func deliver(_ bytes: [UInt8], metadata: FrameMetadata = .none) -> Bool {
        let accepted = queue.withLock { queue -> Bool in
            guard queue.count < capacity else { return false }
            var tail = queue.head + queue.count
            if tail >= capacity { tail -= capacity }
            (slots + tail).initialize(to: InboundFrame(bytes: bytes, metadata: metadata))
            queue.count += 1
            queue.accepted &+= 1
            return true
        }
        guard accepted else {
            inboundDropCount.add(1, ordering: .relaxed)
            return false
        }
        if tapCount.load(ordering: .relaxed) > 0 {
            let observers = taps.withLock { $0 }
            bytes.withUnsafeBytes { buffer in
                for tap in observers { tap.observe(buffer, direction: .received) }
            }
        }
        // The flag is still up when the card has not acknowledged it yet: it will drain after acknowledging, and
        // the frame was queued under the lock that drain takes, so it cannot be missed. Skips a locked exchange.
        guard !work.load(ordering: .acquiring) else { return true }
        signalWork()
        return true
    }

    /// Frames the inbound queue refused because it was full.
    public var inboundDropped: UInt64 { inboundDropCount.load(ordering: .relaxed) }
    /// Frames the inbound queue accepted.
    public var inboundAccepted: UInt64 { queue.withLock { $0.accepted } }

    /// Raises the pending-work flag and calls ``onWork`` only when the flag was down: one wakeup per batch, not per
    /// frame. Consumers clear the flag with ``acknowledgeWork()`` before they drain, so a frame that arrives after the
    /// drain raises it again and nothing waits unseen.
    private func signalWork() {
        guard !work.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wakeup.withLock { $0 }?.action()
    }

    // MARK: Card side (card thread)

    /// Whether frames or a link change may be waiting. Cheap: one atomic load.
    public var hasPendingWork: Bool { work.load(ordering: .acquiring) }

    /// Clears the pending-work flag; call before draining so a concurrent delivery re-raises it.
    public func acknowledgeWork() { work.store(false, ordering: .releasing) }

    /// Frames waiting in the inbound queue.
    public var queuedFrames: Int { queue.withLock { $0.count } }

    /// Removes and returns the oldest queued frame.
    public func nextInbound() -> InboundFrame? {
        let frame = queue.withLock { queue -> InboundFrame? in
            guard queue.count > 0 else { return nil }
            let frame = (slots + queue.head).move()
            queue.head += 1
            if queue.head == capacity { queue.head = 0 }
            queue.count -= 1
            return frame
        }
        if let frame, let onDequeue { onDequeue(frame) }
        return frame
    }

    /// Takes up to `limit` of the oldest queued frames with one lock acquisition and hands each to `body`, in order,
    /// outside the lock (backends keep delivering meanwhile). Returns how many it took; 0 when the queue is empty, or
    /// when called from inside `body` (a re-entrant call takes nothing: the outer caller drains on, see
    /// `VirtioNetCard.service()`).
    @discardableResult
    public func drainInbound(limit: Int, _ body: (InboundFrame) -> Void) -> Int {
        guard !draining, limit > 0 else { return 0 }
        let taken = queue.withLock { queue -> Int in
            let taken = min(queue.count, limit)
            let first = min(taken, capacity - queue.head)
            drained.moveInitialize(from: slots + queue.head, count: first)
            if taken > first { (drained + first).moveInitialize(from: slots, count: taken - first) }
            queue.head += taken
            if queue.head >= capacity { queue.head -= capacity }
            queue.count -= taken
            return taken
        }
        guard taken > 0 else { return 0 }
        draining = true
        for i in 0..<taken {
            // Moved out, not copied: the frame's only reference travels to `body` and ends with it.
            let frame = (drained + i).move()
            if let onDequeue { onDequeue(frame) }
            body(frame)
        }
        draining = false
        return taken
    }

    /// Sends a frame the card transmitted to the attachment (or counts a drop). `frame` is borrowed for the call.
    ///
    /// Threading: may be called from several threads at once (virtio-net queue pairs serviced in parallel) as long as
    /// no host-side call that changes the port (``attach(_:)``, ``detach()``, ``setPromiscuous(_:)``, ``onDequeue``)
    /// runs meanwhile; the counters are atomic, taps are called concurrently, and the attachment's
    /// `transmit(_:metadata:from:)` must accept concurrent calls when the host services pairs in parallel.
    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata = .none) {
        if tapCount.load(ordering: .relaxed) > 0 {
            for tap in taps.withLock({ $0 }) { tap.observe(frame, direction: .transmitted) }
        }
        guard let attachmentStorage else {
            transmittedUnattachedCount.wrappingAdd(1, ordering: .relaxed)
            return
        }
        transmittedCount.wrappingAdd(1, ordering: .relaxed)
        attachmentStorage.transmit(frame, metadata: metadata, from: self)
    }

    /// Tells the attachment the card's promiscuous state, when it changes.
    public func setPromiscuous(_ enabled: Bool) {
        guard enabled != promiscuous else { return }
        promiscuous = enabled
        attachmentStorage?.promiscuousModeChanged(enabled, on: self)
    }

    /// Whether the card last reported itself promiscuous.
    public var isPromiscuous: Bool { promiscuous }
}

/// ``FramePort/onWork`` in a box, so the lock never holds a bare function value.
private final class WakeupCallback: Sendable {
    let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
}
