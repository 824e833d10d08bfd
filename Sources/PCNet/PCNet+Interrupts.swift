import NICCore

extension PCNetCard {
    /// Sets interrupt flag `flag` in CSR0. A newly raised flag counts as unseen: the guest must read CSR0 before a
    /// write of one can clear it.
    @inline(__always)
    func raise(_ flag: CSR0) {
        guard csr[0] & flag.mask != flag.mask else { return }
        csr[0] |= flag.mask
        csr0SeenByGuest &= ~flag.mask
    }

    /// Recomputes INTR and drives the INTA line: any unmasked CSR0 flag, any CSR4 source whose mask is clear, any
    /// enabled CSR5 source, a user interrupt, or the Am79C973's software timer; the pin follows INTR while IENA is set.
    func updateInterrupts() {
        var state = csr[0] & ~CSR0.interrupt.mask
        if csr[4] & CSR4.userInterruptCommand.mask != 0 {
            csr[4] &= ~CSR4.userInterruptCommand.mask
            csr[4] |= CSR4.userInterrupt.mask
        }
        let pending =
            state & ~csr[3] & CSR0.maskableSources != 0
            || (csr[4] >> 1) & ~csr[4] & CSR4.maskedSourcePairs != 0
            || (csr[5] >> 1) & csr[5] & (CSR5.enabledSourcePairs | CSR5.systemSourcePairs) != 0
            || csr[4] & CSR4.userInterrupt.mask != 0
            || (chip == .am79C973 && csr[7] & 0x0C00 == 0x0C00)
        if pending { state |= CSR0.interrupt.mask }
        csr[0] = state
        pin.set(pending && state & CSR0.interruptEnable.mask != 0)
    }
}
