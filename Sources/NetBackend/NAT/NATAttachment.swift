import CNetShims
import Glibc
import NICCore
import Synchronization

/// A private user-mode router for one card, as VirtualBox's NAT mode: the guest gets an address by DHCP and reaches
/// the outside world through the host's sockets, with no privileges and no host configuration.
///
/// ```swift
/// var configuration = NATConfiguration(slot: 0)          // 10.0.2.0/24, gateway .2, DNS .3, DHCP from .15
/// configuration.portForwards = [try PortForwardRule(parsing: "guestssh,tcp,127.0.0.1,2222,,22")]
/// let nat = try NATAttachment(configuration: configuration)
/// port.attach(nat)                                       // raises the port's carrier
/// ...
/// nat.close()                                            // stops the event loop, closes every socket
/// ```
///
/// Frames from the guest are handled on the card's thread as ``transmit(_:metadata:from:)`` is called; host
/// sockets and timers are served by one event loop thread (epoll) per instance. Both run under one lock, and frames
/// for the guest are delivered to the port after it is released, in the order the engine made them whichever thread
/// delivers. Every drop and error is counted in ``counters``.
public final class NATAttachment: NetworkAttachment {
    /// The configuration the NAT was created with (its port forwarding rules as of creation).
    public let configuration: NATConfiguration
    let runtime: NATRuntime

    /// Creates the NAT, opens the configured port forwards and starts its event loop. Throws when the
    /// configuration is invalid or a port forward cannot be opened (the error names the rule).
    public convenience init(configuration: NATConfiguration = NATConfiguration()) throws(NATError) {
        try self.init(configuration: configuration, clock: monotonicNanoseconds)
    }

    /// Creates the NAT with `clock` (nanoseconds, monotonic) as its time source.
    init(configuration: NATConfiguration, clock: @escaping @Sendable () -> UInt64) throws(NATError) {
        try configuration.validate()
        self.configuration = configuration
        runtime = try NATRuntime(configuration: configuration, clock: clock)
    }

    deinit {
        runtime.close()
    }

    /// Stops the event loop and closes every host socket. Frames transmitted afterwards are dropped and counted.
    public func close() { runtime.close() }

    /// The counters by name: one for every drop and error path.
    public var counters: [Counter] { runtime.counters }

    /// The value of the counter named `name` (0 if there is none).
    public func counter(_ name: String) -> UInt64 { counters.first { $0.name == name }?.value ?? 0 }

    /// The port forwarding rules in effect now.
    public var portForwards: [PortForwardRule] {
        runtime.withEngine { engine in engine.forwards.values.map(\.rule).sorted { $0.name < $1.name } }
    }

    /// Adds a port forwarding rule while running. Throws, and changes nothing, when the name is taken, the host port
    /// is below 1024 without privilege, or the port is in use; other rules keep working.
    public func addPortForward(_ rule: PortForwardRule) throws(NATError) {
        try runtime.engine.withLock { engine throws(NATError) in try engine.addForward(rule) }
    }

    /// Removes the rule named `name`; its listening socket closes, connections it made stay up.
    public func removePortForward(named name: String) throws(NATError) {
        try runtime.engine.withLock { engine throws(NATError) in try engine.removeForward(named: name) }
    }

    /// The address the guest was leased or last used, if any.
    public var guestAddress: IPv4Address? { runtime.withEngine { $0.defaultGuestAddress } }

    /// The IPv6 address (in the prefix) the guest last used or announced, if any.
    public var guestAddress6: IPv6Address? { runtime.withEngine { $0.defaultGuestAddress6 } }

    /// Open TCP connections, UDP flows and ICMP echo flows.
    public var flowCounts: (tcp: Int, udp: Int, icmp: Int) {
        runtime.withEngine { ($0.tcpFlows.count, $0.udpFlows.count, $0.icmpFlows.count) }
    }

    // MARK: NetworkAttachment

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        runtime.transmit(frame, metadata: metadata)
    }

    public func didAttach(_ port: FramePort) {
        runtime.port.withLock { $0.port = port }
        port.setCarrier(true)
    }

    public func didDetach(_ port: FramePort) {
        runtime.port.withLock { box in if box.port === port { box.port = nil } }
    }
}

/// What the attachment and its event loop thread share. The thread holds this, not the attachment, so dropping
/// the last reference to the attachment stops the loop.
final class NATRuntime: @unchecked Sendable {
    let engine: Mutex<NATEngine>
    let thread: EventLoopThread
    let port = Mutex<WeakPort>(WeakPort())
    private let running = Atomic<Bool>(true)
    private let stopped = Mutex<Bool>(false)
    private let detachedDrops = Atomic<UInt64>(0)
    private let queueDrops = Atomic<UInt64>(0)
    private let delivered = Atomic<UInt64>(0)
    /// Frames the engine made, in order, waiting for delivery to the port; filled under the engine's lock.
    private let staged = Mutex<[InboundFrame]>([])
    /// Whether a thread is delivering ``staged`` frames: the others leave theirs to it, so the guest sees frames in
    /// the engine's order (two threads each delivering their own batch reordered TCP segments, and the guest's
    /// duplicate acknowledgments set off spurious retransmissions).
    private let delivering = Atomic<Bool>(false)
    /// The guest link the event loop serves, if any (see ``NATGuestLink``); held while the loop services it.
    let guestLink = Mutex<(any NATGuestLink)?>(nil)
    /// Its descriptor, or -1.
    let guestLinkDescriptor = Atomic<Int32>(-1)

    struct WeakPort {
        weak var port: FramePort?
    }

    init(configuration: NATConfiguration, clock: @escaping @Sendable () -> UInt64) throws(NATError) {
        do {
            thread = try EventLoopThread(name: "the NAT's event loop")
        } catch {
            throw NATError(error)
        }
        let engine = NATEngine(config: configuration, loop: thread.loop)
        engine.clock = clock
        engine.now = clock()
        for rule in configuration.portForwards {
            do {
                try engine.addForward(rule)
            } catch {
                engine.shutdown()
                throw error
            }
        }
        self.engine = Mutex(engine)
        do {
            try thread.start(events: 64) { [self] ready in runLoop(ready) }
        } catch {
            self.engine.withLock { $0.shutdown() }
            throw NATError(error)
        }
    }

    func close() {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        running.store(false, ordering: .releasing)
        // The loop exits within one wait; bounded so a stuck loop cannot hang the caller.
        thread.stop()
        engine.withLock { $0.shutdown() }
    }

    var counters: [Counter] {
        var list = engine.withLock { $0.counts.counters }
        list.append(Counter("delivered", delivered.load(ordering: .relaxed)))
        list.append(Counter("drop_guest_queue_full", queueDrops.load(ordering: .relaxed)))
        list.append(Counter("drop_detached", detachedDrops.load(ordering: .relaxed)))
        return list
    }

    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata) {
        guard running.load(ordering: .acquiring) else {
            detachedDrops.add(1, ordering: .relaxed)
            return
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: frame.count) { buffer, count in
            if let source = frame.baseAddress, let target = buffer.baseAddress { memcpy(target, source, frame.count) }
            count = frame.count
        }
        let wake = engine.withLock { engine -> Bool in
            engine.handleFrame(bytes, metadata: metadata)
            let wake = engine.wakeNeeded
            engine.wakeNeeded = false
            stage(engine)
            return wake
        }
        if wake { thread.loop.wake() }
        flush()
    }

    /// Moves the engine's outbox to the staged frames; called with the engine's lock held, so frames are staged in
    /// the order they were made.
    func stage(_ engine: NATEngine) {
        let frames = engine.takeOutbox()
        guard !frames.isEmpty else { return }
        staged.withLock { $0.append(contentsOf: frames) }
    }

    /// Delivers the staged frames unless another thread is doing so (it takes these too). Bounded: after many rounds
    /// with frames still arriving, the event loop is woken to deliver the rest.
    func flush() {
        for _ in 0..<1024 {
            guard !delivering.exchange(true, ordering: .acquiringAndReleasing) else { return }
            let frames = staged.withLock { staged -> [InboundFrame] in
                defer { staged.removeAll(keepingCapacity: true) }
                return staged
            }
            deliver(frames)
            delivering.store(false, ordering: .releasing)
            // Frames staged while this thread delivered, by a thread that then left them to it.
            guard staged.withLock({ !$0.isEmpty }) else { return }
        }
        thread.loop.wake()
    }

    private func deliver(_ frames: [InboundFrame]) {
        guard !frames.isEmpty else { return }
        guard let target = port.withLock({ $0.port }) else {
            detachedDrops.add(UInt64(frames.count), ordering: .relaxed)
            return
        }
        for frame in frames {
            if target.deliver(frame.bytes, metadata: frame.metadata) {
                delivered.add(1, ordering: .relaxed)
            } else {
                queueDrops.add(1, ordering: .relaxed)
            }
        }
    }

    /// Lets the engine send the guest large TCP segments with segmentation metadata (its link takes them), or not.
    func setGuestOffloads(_ enabled: Bool) {
        engine.withLock { $0.guestSegmentation = enabled }
    }

    /// Runs the timers once now (tests with a manual clock call this after advancing it).
    func runTimers() {
        engine.withLock { engine in
            _ = engine.runTimers()
            stage(engine)
        }
        flush()
    }

    /// Runs `body` on the engine under the lock, then delivers what it queued.
    func withEngine<R>(_ body: (NATEngine) -> R) -> R {
        let result = engine.withLock { engine in
            let result = body(engine)
            stage(engine)
            return result
        }
        flush()
        return result
    }

    /// One round of the event loop: the ready descriptors (the guest link's last, with the frames for it this round
    /// made), then the timers when the earliest is due; answers the wait until the next timer.
    private func runLoop(_ ready: [(Int32, UInt32)]) -> Int32 {
        if !ready.isEmpty, running.load(ordering: .acquiring) {
            let link = guestLinkDescriptor.load(ordering: .acquiring)
            engine.withLock { engine in
                for (fd, flags) in ready where fd != link || link < 0 { engine.handleEvent(fd: fd, events: flags) }
                stage(engine)
            }
            flush()
            // The guest's frames, and the frames for it that this round made, without a handoff to another thread.
            serviceGuestLink(readable: link >= 0 && ready.contains { $0.0 == link })
        }
        let (deadline, now) = engine.withLock { engine -> (UInt64?, UInt64) in
            // Scan the flows only when the earliest armed timer is due: every new timer is armed, and deadlines that
            // moved later since the last scan only make a scan early, never late.
            engine.now = engine.clock()
            if engine.now >= engine.scheduledWake || engine.scheduledWake == .max {
                engine.scheduledWake = engine.runTimers() ?? .max
            }
            let deadline = engine.scheduledWake == .max ? nil : engine.scheduledWake
            stage(engine)
            return (deadline, engine.now)
        }
        flush()
        serviceGuestLink(readable: false)
        return EventLoop.timeout(until: deadline, now: now, limit: 60_000)
    }
}

extension NATError {
    /// The error of an event loop's failed system call.
    init(_ error: EventLoopError) { self = .system(error.what, errno: error.code) }
}

extension NATEngine {
    /// Removes and returns the frames queued for the guest.
    func takeOutbox() -> [InboundFrame] {
        counts.bump(.framesOut, by: UInt64(outbox.count))
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    /// Notes a timer armed for `deadline`; the loop is woken if it sleeps past it.
    func arm(_ deadline: UInt64) {
        if deadline < scheduledWake {
            scheduledWake = deadline
            wakeNeeded = true
        }
    }
}
