import NICCore
import Testing

@Suite struct ClockTests {
    @Test func firesInDeadlineOrder() {
        let clock = ManualClock()
        var fired: [(String, Duration)] = []
        let a = DeviceTimer(clock: clock) { fired.append(("a", clock.now)) }
        let b = DeviceTimer(clock: clock) { fired.append(("b", clock.now)) }
        let c = DeviceTimer(clock: clock) { fired.append(("c", clock.now)) }
        a.arm(after: .milliseconds(30))
        b.arm(after: .milliseconds(10))
        c.arm(after: .milliseconds(20))
        #expect(clock.nextDeadline == .milliseconds(10))
        #expect(clock.advance(by: .milliseconds(5)) == 0)
        #expect(fired.isEmpty)
        #expect(clock.advance(by: .milliseconds(45)) == 3)
        #expect(fired.map(\.0) == ["b", "c", "a"])
        #expect(fired.map(\.1) == [.milliseconds(10), .milliseconds(20), .milliseconds(30)], "now is the deadline")
        #expect(clock.now == .milliseconds(50))
        #expect(!a.isArmed && !b.isArmed && !c.isArmed)
        #expect(clock.nextDeadline == nil)
    }

    @Test func periodicTimerReArms() {
        let clock = ManualClock()
        var ticks: [Duration] = []
        var timer: DeviceTimer?
        timer = DeviceTimer(clock: clock) {
            ticks.append(clock.now)
            timer?.arm(after: .milliseconds(10))
        }
        timer?.arm(after: .milliseconds(10))
        #expect(clock.advance(by: .milliseconds(100)) == 10)
        #expect(ticks == (1...10).map { .milliseconds(10 * $0) })
        #expect(timer?.deadline == .milliseconds(110))
        timer = nil
    }

    @Test func cancelAndReplace() {
        let clock = ManualClock()
        var count = 0
        let timer = DeviceTimer(clock: clock) { count += 1 }
        timer.arm(after: .milliseconds(10))
        timer.cancel()
        #expect(!timer.isArmed)
        #expect(clock.nextDeadline == nil)
        #expect(clock.advance(by: .seconds(1)) == 0)
        #expect(count == 0)

        timer.arm(after: .milliseconds(10))
        timer.arm(after: .milliseconds(30))
        #expect(clock.advance(by: .milliseconds(20)) == 0, "re-arming replaced the earlier deadline")
        #expect(clock.advance(by: .milliseconds(10)) == 1)
        #expect(count == 1)
        timer.fire()
        #expect(count == 1, "a disarmed timer's fire() does nothing")
    }

    @Test func firingCapPerAdvance() {
        let clock = ManualClock()
        var count = 0
        var timer: DeviceTimer?
        timer = DeviceTimer(clock: clock) {
            count += 1
            timer?.arm(after: .nanoseconds(1))
        }
        timer?.arm(after: .nanoseconds(1))
        #expect(clock.advance(by: .seconds(1)) == ManualClock.maximumFiringsPerAdvance)
        #expect(count == ManualClock.maximumFiringsPerAdvance)
        #expect(clock.now == .seconds(1))
        #expect(clock.nextDeadline == .seconds(1) + .nanoseconds(1), "skipped ticks move past the target")
        #expect(clock.advance(by: .nanoseconds(1)) == 1)
        #expect(count == ManualClock.maximumFiringsPerAdvance + 1)
        timer = nil
    }

    @Test func negativeAdvanceDoesNotMoveTime() {
        let clock = ManualClock()
        clock.advance(by: .milliseconds(5))
        clock.advance(by: .milliseconds(-3))
        #expect(clock.now == .milliseconds(5))
    }

    @Test func hostClockRunsOnlyDueTimers() {
        let clock = HostClock()
        var fired: [String] = []
        let now = DeviceTimer(clock: clock) { fired.append("now") }
        let later = DeviceTimer(clock: clock) { fired.append("later") }
        now.arm(after: .zero)
        later.arm(after: .seconds(3600))
        #expect(clock.nextDeadline != nil)
        #expect(clock.runDueTimers() == 1)
        #expect(fired == ["now"])
        #expect(clock.runDueTimers() == 0)
        #expect(later.isArmed)
        later.cancel()
        #expect(clock.nextDeadline == nil)
        #expect(clock.now > .zero)
    }

    @Test func durationNanoseconds() {
        #expect(Duration.seconds(2).nanoseconds == 2_000_000_000)
        #expect(Duration.microseconds(1500).nanoseconds == 1_500_000)
        #expect(Duration.seconds(Int64.max).nanoseconds == Int64.max)
        #expect(Duration.seconds(Int64.min / 2).nanoseconds == Int64.min)
    }
}
