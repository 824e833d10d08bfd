import NICCore

/// Interrupt causes, masking, ITR moderation and the receive/transmit delay timers.
///
/// The INTx line follows ICR & IMS. ITR sets the minimum interval between two assertions in 256 ns units: a cause
/// that arrives sooner waits on the throttle timer. RDTR (packet timer, restarted by every frame) and RADV (absolute
/// timer, started by the first frame) delay RXT0 in 1.024 µs units; TIDV and TADV do the same for TXDW, for
/// descriptors with IDE set.
extension E1000Card {
    /// One delay-timer tick: 1.024 µs.
    static let delayUnit = Duration.nanoseconds(1024)
    /// One ITR tick: 256 ns.
    static let throttleUnit = Duration.nanoseconds(256)

    /// Sets interrupt causes in ICR; callers update the line when they are done (``updateInterrupts()``).
    @inline(__always)
    func raise(_ causes: UInt32) {
        regs[Reg.icr] |= causes
    }

    /// Drives the INTx line from ICR & IMS, holding a new assertion back until the ITR interval has passed.
    func updateInterrupts() {
        guard regs[Reg.icr] & regs[Reg.ims] != 0 else {
            pin.set(false)
            return
        }
        guard !pin.requested else { return }
        let interval = Self.throttleUnit * Int(regs[Reg.itr] & 0xFFFF)
        let now = clock.now
        if interval > .zero, let last = lastAssertion, now - last < interval {
            if let timers, !timers.throttle.isArmed { timers.throttle.arm(after: last + interval - now) }
            return
        }
        timers?.throttle.cancel()
        lastAssertion = now
        statistics[.interruptAssertions] &+= 1
        pin.set(true)
    }

    // MARK: Receive delay

    /// A frame was stored: RXT0 now when RDTR is 0, otherwise (re)start the packet timer and, if RADV is set, the
    /// absolute timer unless it is already running.
    func receiveDelayedInterrupt() {
        let packetDelay = Int(regs[Reg.rdtr] & 0xFFFF)
        guard packetDelay != 0, let timers else {
            raise(ICR.receiveTimer.mask)
            return
        }
        start(timers.receive, packetDelay: packetDelay, absoluteDelayRegister: Reg.radv)
    }

    func receiveTimerFired() { delayElapsed(timers?.receive, cause: .receiveTimer) }

    /// RDTR.FPD: any delayed receive interrupt fires now.
    func flushReceiveTimers() {
        guard let timers, timers.receive.isArmed else { return }
        receiveTimerFired()
    }

    // MARK: Transmit delay

    /// Descriptors with RS were written back: TXDW now unless every one asked for a delay (IDE) and TIDV is set.
    func transmitDelayedInterrupt(immediate: Bool) {
        let packetDelay = Int(regs[Reg.tidv] & 0xFFFF)
        guard !immediate, packetDelay != 0, let timers else {
            timers?.transmit.cancel()
            raise(ICR.transmitDescriptorWritten.mask)
            return
        }
        start(timers.transmit, packetDelay: packetDelay, absoluteDelayRegister: Reg.tadv)
    }

    func transmitTimerFired() { delayElapsed(timers?.transmit, cause: .transmitDescriptorWritten) }

    // MARK: Either delay

    /// Starts `delay` with `packetDelay` and, on the chips that have RADV and TADV, the absolute delay in
    /// `absoluteDelayRegister`.
    private func start(_ delay: DelayTimers, packetDelay: Int, absoluteDelayRegister: Int) {
        let absoluteDelay = chip.hasMDIC ? Int(regs[absoluteDelayRegister] & 0xFFFF) : 0
        delay.start(packetDelay: packetDelay, absoluteDelay: absoluteDelay, unit: Self.delayUnit)
    }

    /// One of `delay`'s timers fired: both stop and `cause` is raised.
    private func delayElapsed(_ delay: DelayTimers?, cause: ICR) {
        delay?.cancel()
        raise(cause.mask)
        updateInterrupts()
    }
}
