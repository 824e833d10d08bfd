/// A token bucket: `rate` tokens a second, at most `burst` saved up. Integer arithmetic on a monotonic clock in
/// nanoseconds; never traps, whatever the clock does.
struct NATTokenBucket {
    private(set) var tokens: Int
    private var refilled: UInt64

    /// The largest bucket: keeps the arithmetic far from overflow whatever the configuration says.
    static let largest = 1_000_000

    init(burst: Int, now: UInt64) {
        tokens = min(max(1, burst), Self.largest)
        refilled = now
    }

    /// Takes a token if there is one; `rate` 0 or less means no limit.
    mutating func take(now: UInt64, rate: Int, burst: Int) -> Bool {
        guard rate > 0 else { return true }
        let size = min(max(1, burst), Self.largest)
        let rate = UInt64(min(rate, 1_000_000_000))
        if now > refilled {
            // At most one bucketful is earned, so the multiplication stays small.
            let elapsed = min(now - refilled, 1_000_000_000 * UInt64(size) / rate + 1)
            let earned = elapsed * rate / 1_000_000_000
            if earned > 0 {
                tokens = min(size, tokens + Int(earned))
                refilled = tokens == size ? now : refilled + earned * 1_000_000_000 / rate
            }
        } else if now < refilled {
            refilled = now  // a clock that went back: start again from here
        }
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }
}

extension NATEngine {
    /// Whether an ICMP or ICMPv6 error may go to the guest now (``NATLimits/icmpErrorsPerSecond``); one that may not
    /// is counted.
    func allowICMPError() -> Bool {
        let limits = config.limits
        guard icmpErrorBucket.take(now: now, rate: limits.icmpErrorsPerSecond, burst: limits.icmpErrorBurst) else {
            counts.bump(.icmpErrorsRateLimited)
            return false
        }
        return true
    }
}
