import CNetShims
import Glibc
import NICCore
import Synchronization

/// A flag that is set once; ``set()`` answers whether this call set it.
final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// Sets the flag; `true` the first time only.
    func set() -> Bool { !value.exchange(true, ordering: .acquiringAndReleasing) }

    /// Whether the flag is set.
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// The one thread that runs an ``EventLoop``: it waits in epoll on the loop's descriptors and its eventfd (which a
/// port's `onWork` or a timer change rings) and hands each batch of ready descriptors (possibly none, after a wakeup
/// or a timeout) to its body, which answers how long the next wait may last. No busy polling: ``stop()`` rings the
/// eventfd. The thread is a plain pthread (Glibc only: NetBackend links into C hosts without Foundation).
final class EventLoopThread: @unchecked Sendable {
    let loop: EventLoop
    private let stopping = OnceFlag()
    private let finished = OnceFlag()
    private let name: String

    /// Creates the loop the thread will run; `name` begins the description of every error.
    init(name: String) throws(EventLoopError) {
        self.name = name
        do {
            loop = try EventLoop()
        } catch {
            throw EventLoopError(what: "\(name): \(error.what)", code: error.code)
        }
    }

    /// Whether ``stop()`` was called.
    var isStopping: Bool { stopping.isSet }

    /// Starts the thread; `body` runs on it once with no events, then after every wait with the ready
    /// `(descriptor, events)` pairs, and answers the next wait's timeout in milliseconds. `events` is how many
    /// descriptors one wait reports at most.
    func start(events: Int = 32, _ body: @escaping @Sendable ([(Int32, UInt32)]) -> Int32) throws(EventLoopError) {
        let started = startThread { [self] in
            var buffer = [epoll_event](repeating: epoll_event(), count: events)
            var timeout = body([])
            while !stopping.isSet {
                let ready = loop.wait(timeoutMilliseconds: timeout, into: &buffer)
                guard !stopping.isSet else { break }
                timeout = body(ready)
            }
            _ = finished.set()
        }
        guard started else { throw EventLoopError(what: "\(name): starting the thread", code: EAGAIN) }
    }

    /// Stops the thread and waits for it (at most two seconds); `false` if it did not finish in time.
    @discardableResult
    func stop() -> Bool {
        guard stopping.set() else { return finished.isSet }
        loop.wake()
        for _ in 0..<2000 where !finished.isSet { usleep(1000) }
        return finished.isSet
    }
}
