/// A real-time clock for hosts that run a device on one thread: timers fire only from ``runDueTimers()``, which the
/// host calls from that thread (its event loop can sleep until ``nextDeadline``).
public final class HostClock: DeviceClock {
    private let origin = ContinuousClock.now
    private var pending: [ObjectIdentifier: (timer: DeviceTimer, deadline: Duration)] = [:]

    /// Creates a clock whose origin is now.
    public init() {}

    public var now: Duration { ContinuousClock.now - origin }

    public func schedule(_ timer: DeviceTimer, at deadline: Duration) {
        pending[ObjectIdentifier(timer)] = (timer, deadline)
    }

    public func cancel(_ timer: DeviceTimer) {
        pending[ObjectIdentifier(timer)] = nil
    }

    /// The earliest pending deadline, on this clock's time line.
    public var nextDeadline: Duration? { pending.values.map(\.deadline).min() }

    /// Fires every timer whose deadline has passed (each at most once). Returns how many fired.
    @discardableResult
    public func runDueTimers() -> Int {
        let current = now
        let due = pending.filter { $0.value.deadline <= current }.sorted { $0.value.deadline < $1.value.deadline }
        for (key, _) in due { pending[key] = nil }
        for (_, entry) in due { entry.timer.fire() }
        return due.count
    }
}
