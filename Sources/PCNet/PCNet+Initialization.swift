import NICCore

extension PCNetCard {
    /// The initialization block address (CSR2:CSR1).
    var initializationBlockAddress: UInt32 { UInt32(csr[2]) << 16 | UInt32(csr[1]) }

    /// A bus-master address as the chip emits it: 32-bit structures use it whole; 16-bit ones use 24 bits, with
    /// the top byte from IADR[31:24] (CSR2 bits 15:8).
    func physicalAddress(_ address: UInt32) -> GuestAddress {
        if softwareSize32 { return GuestAddress(UInt64(address)) }
        return GuestAddress(UInt64((address & 0x00FF_FFFF) | UInt32(csr[2] & 0xFF00) << 16))
    }

    /// INIT: reads the initialization block (16- or 32-bit layout per SSIZE32) into the mode, address filter and
    /// ring registers and sets IDON. With bus mastering off the read cannot happen: the chip reports MERR, or, when
    /// the same write did not also set STRT, defers INIT to the next CSR0 read (drivers that toggle bus mastering
    /// around INIT re-enable it first).
    func initialize(allowDeferral: Bool) {
        guard config.command.contains(.busMaster) else {
            if allowDeferral {
                initPending = true
                csr[0] |= CSR0.initialize.mask
            } else {
                csr[0] |= CSR0.initialize.mask
                raise(.memoryError)
            }
            return
        }
        let base = physicalAddress(initializationBlockAddress)
        var block = [UInt8](repeating: 0, count: 28)
        let size = softwareSize32 ? 28 : 24
        do throws(DMAError) {
            try dma.read(at: base, into: &block, range: 0..<size)
        } catch {
            memoryError()
            return
        }
        func word(_ offset: Int) -> UInt16 { block.load(littleEndian: UInt16.self, at: offset) ?? 0 }
        func dword(_ offset: Int) -> UInt32 { block.load(littleEndian: UInt32.self, at: offset) ?? 0 }

        let mode = word(0)
        var receiveLengthCode: Int
        var transmitLengthCode: Int
        var receiveBase: UInt32
        var transmitBase: UInt32
        if softwareSize32 {
            receiveLengthCode = Int(block[2] >> 4)
            transmitLengthCode = Int(block[3] >> 4)
            for i in 0..<3 { csr[12 + i] = word(4 + 2 * i) }
            for i in 0..<4 { csr[8 + i] = word(12 + 2 * i) }
            receiveBase = dword(20)
            transmitBase = dword(24)
        } else {
            for i in 0..<3 { csr[12 + i] = word(2 + 2 * i) }
            for i in 0..<4 { csr[8 + i] = word(8 + 2 * i) }
            let receive = dword(16)
            let transmit = dword(20)
            receiveLengthCode = Int(receive >> 29)
            transmitLengthCode = Int(transmit >> 29)
            receiveBase = receive & 0x00FF_FFFF
            transmitBase = transmit & 0x00FF_FFFF
        }
        receiveLengthCode = min(receiveLengthCode, 9)
        transmitLengthCode = min(transmitLengthCode, 9)
        csr[6] = UInt16(transmitLengthCode << 12 | receiveLengthCode << 8)
        csr[15] = mode
        csr[24] = UInt16(truncatingIfNeeded: receiveBase)
        csr[25] = UInt16(truncatingIfNeeded: receiveBase >> 16)
        csr[30] = UInt16(truncatingIfNeeded: transmitBase)
        csr[31] = UInt16(truncatingIfNeeded: transmitBase >> 16)
        csr[76] = Self.encodeRingLength(1 << receiveLengthCode)
        csr[78] = Self.encodeRingLength(1 << transmitLengthCode)
        rxIndex = 0
        txIndex = 0
        port.setPromiscuous(mode & CSR15.promiscuous.mask != 0)
        csr[0] &= ~CSR0.stop.mask
        csr[0] |= CSR0.initialize.mask
        raise(.initializationDone)
    }

    /// STRT: enables the transmitter and receiver unless the mode disables them, and starts polling.
    func start() {
        if csr[15] & CSR15.disableTransmit.mask == 0 { csr[0] |= CSR0.transmitOn.mask }
        if csr[15] & CSR15.disableReceive.mask == 0 { csr[0] |= CSR0.receiveOn.mask }
        csr[0] &= ~CSR0.stop.mask
        csr[0] |= CSR0.start.mask
        schedulePoll()
    }

    /// STOP: every other CSR0 bit clears; transmitter, receiver and polling stop.
    func stop() {
        csr[0] = CSR0.stop.mask
        csr[4] &= ~0x02C2
        csr[5] &= ~0x0011
        initPending = false
        loopbackQueue.removeAll()
        pollTimer?.cancel()
    }

    /// Leaving suspend (CSR5.SPND cleared): transmit what queued up and resume polling.
    func resumeFromSuspend() {
        schedulePoll()
        if csr[0] & CSR0.transmitDemand.mask != 0 { transmitPass() }
    }

    /// Whether the chip runs: started, not stopped, not suspended.
    var isRunning: Bool {
        csr[0] & (CSR0.start.mask | CSR0.stop.mask) == CSR0.start.mask && csr[5] & CSR5.suspend.mask == 0
    }

    /// A bus-master access failed: the chip sets MERR, the PCI status records a master abort, and the transmitter
    /// and receiver turn off until the driver re-initializes.
    func memoryError() {
        config.setStatus(.receivedMasterAbort)
        csr[0] &= ~(CSR0.transmitOn.mask | CSR0.receiveOn.mask)
        raise(.memoryError)
        pollTimer?.cancel()
    }
}
