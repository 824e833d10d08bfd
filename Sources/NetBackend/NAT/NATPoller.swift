import CNetShims
import Glibc

/// An epoll instance plus an eventfd to wake it: the NAT's event loop primitives.
final class NATPoller: @unchecked Sendable {
    let epollFD: Int32
    let wakeFD: Int32

    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)
    static let hangup = UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLRDHUP.rawValue)

    init() throws(NATError) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw .system("epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            let code = errno
            close(epollFD)
            throw .system("eventfd", errno: code)
        }
        guard add(wakeFD, events: Self.readable) else {
            let code = errno
            close(wakeFD)
            close(epollFD)
            throw .system("epoll_ctl(eventfd)", errno: code)
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
}
