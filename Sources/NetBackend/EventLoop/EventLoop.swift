import CNetShims
import Glibc

/// A system call an event loop needed failed.
struct EventLoopError: Error, Equatable {
    /// What was being done (`epoll_create1`, `eventfd`, starting the thread).
    let what: String
    /// The `errno` it failed with.
    let code: Int32
}

/// The event loop every NAT and host link runs on: an epoll instance, an eventfd that wakes it from any thread, and
/// the conversion of the next timer's deadline into a wait. Descriptors are registered with the events to watch and
/// come back from ``wait(timeoutMilliseconds:into:)`` as `(descriptor, events)` pairs. ``EventLoopThread`` runs one
/// on a thread of its own.
final class EventLoop: @unchecked Sendable {
    let epollFD: Int32
    let wakeFD: Int32

    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)
    static let hangup = UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLRDHUP.rawValue)
    /// An error is pending on the descriptor.
    static let error = UInt32(EPOLLERR.rawValue)
    /// Both directions of the descriptor are closed.
    static let peerClosed = UInt32(EPOLLHUP.rawValue)

    init() throws(EventLoopError) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw EventLoopError(what: "epoll_create1", code: errno) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            let code = errno
            close(epollFD)
            throw EventLoopError(what: "eventfd", code: code)
        }
        guard add(wakeFD, events: Self.readable) else {
            let code = errno
            close(wakeFD)
            close(epollFD)
            throw EventLoopError(what: "epoll_ctl(eventfd)", code: code)
        }
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    func add(_ fd: Int32, events: UInt32) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        return epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0
    }

    func modify(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    func remove(_ fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    /// Wakes a thread blocked in ``wait(timeoutMilliseconds:into:)``.
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Waits for events; returns `(fd, events)` pairs, the wake descriptor excluded (and drained).
    func wait(timeoutMilliseconds: Int32, into events: inout [epoll_event]) -> [(Int32, UInt32)] {
        let count = events.withUnsafeMutableBufferPointer {
            epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeoutMilliseconds)
        }
        guard count > 0 else { return [] }
        var ready: [(Int32, UInt32)] = []
        ready.reserveCapacity(Int(count))
        for index in 0..<min(Int(count), events.count) {
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: events[index].data.u64))
            if fd == wakeFD {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
                continue
            }
            ready.append((fd, events[index].events))
        }
        return ready
    }

    /// The wait, in milliseconds, until `deadline` (nanoseconds on the clock that gave `now`), rounded up and at most
    /// `limit`; `limit` when there is no deadline.
    static func timeout(until deadline: UInt64?, now: UInt64, limit: Int32) -> Int32 {
        guard let deadline else { return limit }
        let milliseconds = deadline > now ? (deadline - now + 999_999) / 1_000_000 : 0
        return Int32(min(milliseconds, UInt64(limit)))
    }
}
