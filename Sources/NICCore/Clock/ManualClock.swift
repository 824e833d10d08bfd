/// A clock that moves only when told: deterministic timers for tests, traces and benchmarks.
public final class ManualClock: DeviceClock {
    /// The most timer firings one ``advance(by:)`` performs; periodic timers beyond it skip ticks, as on a busy host.
    public static let maximumFiringsPerAdvance = 4096

    public private(set) var now: Duration = .zero
    private var pending: [ObjectIdentifier: (timer: DeviceTimer, deadline: Duration)] = [:]

    /// Creates a clock at time zero.
    public init() {}

    public func schedule(_ timer: DeviceTimer, at deadline: Duration) {
        pending[ObjectIdentifier(timer)] = (timer, deadline)
    }

    public func cancel(_ timer: DeviceTimer) {
        pending[ObjectIdentifier(timer)] = nil
    }

    /// The earliest pending deadline (a walk over the few pending timers, no allocation: hosts ask on every access).
    public var nextDeadline: Duration? {
        var earliest: Duration?
        for entry in pending.values where earliest.map({ entry.deadline < $0 }) ?? true { earliest = entry.deadline }
        return earliest
    }

    /// Moves time forward by `delta`, firing due timers in deadline order (ties in no particular order).
    /// Returns the number of timers fired.
    @discardableResult
    public func advance(by delta: Duration) -> Int {
        let target = now + max(delta, .zero)
        var fired = 0
        while fired < Self.maximumFiringsPerAdvance,
            let next = pending.min(by: { $0.value.deadline < $1.value.deadline }), next.value.deadline <= target
        {
            pending[next.key] = nil
            now = max(now, next.value.deadline)
            next.value.timer.fire()
            fired += 1
        }
        if fired == Self.maximumFiringsPerAdvance {
            // Periodic timers re-armed during the burst move past the target instead of firing again.
            for (key, entry) in pending where entry.deadline <= target {
                pending[key] = (entry.timer, target + .nanoseconds(1))
                entry.timer.deadlineMoved(to: target + .nanoseconds(1))
            }
        }
        now = target
        return fired
    }
}
