/// Time as a device sees it: a monotonic `now` and timers that fire on the device's own thread.
///
/// Hosts supply a clock whose timers they fire from the same thread that makes every other call into the device; the
/// harness and the tests use ``ManualClock``, which moves only when told.
public protocol DeviceClock: AnyObject {
    /// Monotonic time since the clock's origin.
    var now: Duration { get }
    /// Asks for `timer.fire()` at `deadline`, replacing any earlier request for the same timer.
    func schedule(_ timer: DeviceTimer, at deadline: Duration)
    /// Withdraws the request for `timer`, if any.
    func cancel(_ timer: DeviceTimer)
}

/// A one-shot timer owned by a device. Re-arm it from its own action to make it periodic.
public final class DeviceTimer {
    private unowned let clock: any DeviceClock
    private let action: () -> Void
    /// When the timer fires next, or `nil` when it is not armed.
    public private(set) var deadline: Duration?

    /// Creates a disarmed timer on `clock` that runs `action` when it fires.
    public init(clock: any DeviceClock, action: @escaping () -> Void) {
        self.clock = clock
        self.action = action
    }

    /// Whether the timer is armed.
    public var isArmed: Bool { deadline != nil }

    /// Arms the timer to fire `delay` from now, replacing an earlier deadline.
    public func arm(after delay: Duration) {
        let at = clock.now + max(delay, .zero)
        deadline = at
        clock.schedule(self, at: at)
    }

    /// Disarms the timer.
    public func cancel() {
        guard deadline != nil else { return }
        deadline = nil
        clock.cancel(self)
    }

    /// Called by a clock that postponed the timer (a busy host skipping ticks).
    func deadlineMoved(to deadline: Duration) {
        if self.deadline != nil { self.deadline = deadline }
    }

    /// Called by the clock when the deadline has passed; runs the action once.
    public func fire() {
        guard deadline != nil else { return }
        deadline = nil
        action()
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, carry) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow || carry { return seconds < 0 ? .min : .max }
        return sum
    }
}
