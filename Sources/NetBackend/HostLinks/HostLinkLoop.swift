import CNetShims
import Glibc
import NICCore
import Synchronization

/// A flag that is set once; ``set()`` answers whether this call set it.
final class HostLinkFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// Sets the flag; `true` the first time only.
    func set() -> Bool { !value.exchange(true, ordering: .acquiringAndReleasing) }

    /// Whether the flag is set.
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// The one thread a host link runs: it waits in epoll on the link's descriptors and on an eventfd that the port's
/// `onWork` rings, and hands each batch of ready descriptors (possibly none, after a wakeup) to the link. No busy
/// polling: the wait has no timeout shorter than a few seconds, and ``stop()`` rings the eventfd. The thread is a
/// plain pthread (Glibc only: NetBackend links into C hosts without Foundation).
final class HostLinkLoop: @unchecked Sendable {
    let poller: NATPoller
    private let stopping = HostLinkFlag()
    private let finished = HostLinkFlag()
    private let name: String

    init(name: String) throws(HostLinkError) {
        self.name = name
        do {
            poller = try NATPoller()
        } catch {
            throw .invalid("\(name): event loop: \(error)")
        }
    }

    /// Starts the thread; `body` runs on it after every wait with the ready `(descriptor, events)` pairs.
    func start(_ body: @escaping @Sendable ([(Int32, UInt32)]) -> Void) throws(HostLinkError) {
        let started = startThread { [self] in
            var events = [epoll_event](repeating: epoll_event(), count: 32)
            body([])
            while !stopping.isSet {
                let ready = poller.wait(timeoutMilliseconds: 5_000, into: &events)
                guard !stopping.isSet else { break }
                body(ready)
            }
            _ = finished.set()
        }
        guard started else { throw .system("\(name): starting the thread", errno: EAGAIN) }
    }

    /// Stops the thread and waits for it (at most two seconds); `false` if it did not finish in time.
    @discardableResult
    func stop() -> Bool {
        guard stopping.set() else { return finished.isSet }
        poller.wake()
        for _ in 0..<2000 where !finished.isSet { usleep(1000) }
        return finished.isSet
    }
}

/// A counter one thread bumps and any thread reads.
final class HostLinkCounter: Sendable {
    let name: String
    private let value = Atomic<UInt64>(0)

    init(_ name: String) { self.name = name }

    func bump(by amount: UInt64 = 1) { value.add(amount, ordering: .relaxed) }

    var current: UInt64 { value.load(ordering: .relaxed) }
}
