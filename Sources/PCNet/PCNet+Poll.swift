import NICCore

extension PCNetCard {
    /// The transmit polling interval from CSR47 (two's complement in 33 MHz clocks, bits 3:0 ignored; 0 means
    /// 65536 clocks, about 1.986 ms).
    var pollInterval: Duration {
        let clocks = (0x10000 - Int(csr[47] & 0xFFF0)) & 0xFFFF
        let ticks = clocks == 0 ? 0x10000 : clocks
        return .nanoseconds(Int64(ticks) * 1_000_000_000 / 33_000_000)
    }

    /// Arms the poll timer while the chip runs with transmit polling enabled; disarms it otherwise.
    func schedulePoll() {
        guard let pollTimer else { return }
        if isRunning, csr[4] & CSR4.disableTransmitPolling.mask == 0 {
            if !pollTimer.isArmed { pollTimer.arm(after: pollInterval) }
        } else {
            pollTimer.cancel()
        }
    }

    /// The poll timer: look at the current transmit descriptor and send what the guest handed over.
    func pollTimerFired() {
        guard isRunning else { return }
        if csr[0] & CSR0.transmitOn.mask != 0, csr[4] & CSR4.disableTransmitPolling.mask == 0,
            currentTransmitDescriptorOwned()
        {
            transmitPass()
        }
        updateInterrupts()
        schedulePoll()
    }

    /// The Am79C973 software timer: BCR31 counts 12.8 µs units; each expiry sets CSR7.STINT.
    func armSoftwareTimer() {
        guard chip == .am79C973, let softwareTimer else { return }
        softwareTimer.arm(after: .nanoseconds(12_800 * Int64(max(1, bcr[31]))))
    }

    func softwareTimerFired() {
        guard chip == .am79C973 else { return }
        csr[7] |= 0x0800
        updateInterrupts()
        armSoftwareTimer()
    }
}
