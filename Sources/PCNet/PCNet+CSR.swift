import NICCore

/// How a CSR behaves on access; the table below holds one entry per CSR.
enum CSRAccess {
    /// Reads back what is stored; writes are ignored.
    case readOnly
    /// Writable at any time through the mask.
    case readWrite(UInt16)
    /// Writable through the mask only while the chip is stopped or suspended.
    case whileStopped(UInt16)
    /// Handled by its own code (CSR0, the W1C registers, aliases, ring registers).
    case special
}

/// The CSR map: access rules and the values S_RESET loads.
enum CSRTable {
    static let access: [CSRAccess] = {
        var table = [CSRAccess](repeating: .readOnly, count: 128)
        for index in [0, 4, 5, 7, 15, 16, 17, 58, 72, 74, 76, 78] { table[index] = .special }
        table[3] = .readWrite(CSR3.writable)
        for index in [1, 2] + Array(8...14) + Array(18...47) + Array(60...67) { table[index] = .whileStopped(0xFFFF) }
        for index in [80, 82, 100, 112, 114, 122, 124] { table[index] = .whileStopped(0xFFFF) }
        return table
    }()

    /// Values S_RESET writes (index, value); CSR12-14 come from the APROM and CSR88/89 from the chip.
    static let resetValues: [(Int, UInt16)] = [
        (0, CSR0.stop.mask), (3, 0), (4, CSR4.resetValue), (5, 0), (6, 0), (8, 0), (9, 0), (10, 0), (11, 0),
        (80, 0x1410), (94, 0), (100, 0x0200), (103, 0x0105), (112, 0), (114, 0), (122, 0), (124, 0),
    ]
}

extension PCNetCard {
    /// Whether the chip is stopped or suspended: the state in which most CSRs may be written.
    var stoppedOrSuspended: Bool { csr[0] & CSR0.stop.mask != 0 || csr[5] & CSR5.suspend.mask != 0 }

    /// S_RESET (a read of the RESET port): CSRs to their reset values, rings forgotten, timers stopped.
    func softReset() {
        for (index, value) in CSRTable.resetValues { csr[index] = value }
        for i in 0..<3 { csr[12 + i] = aprom.load(littleEndian: UInt16.self, at: 2 * i) ?? 0 }
        csr[15] &= 0x21C4
        csr[88] = chip.chipIDLow
        csr[89] = chip.chipIDHigh
        for index in [24, 25, 30, 31] { csr[index] = 0 }
        csr[76] = Self.encodeRingLength(1)
        csr[78] = Self.encodeRingLength(1)
        rxIndex = 0
        txIndex = 0
        rap = 0
        initPending = false
        loopbackQueue.removeAll()
        csr0SeenByGuest = 0
        pollTimer?.cancel()
        port.setPromiscuous(false)
        updateInterrupts()
    }

    /// Reads CSR `index` (0...127). CSR88 reads as the whole 32-bit chip ID, as a DWIO read returns it.
    func readCSR(_ index: Int) -> UInt32 {
        switch index & 0x7F {
        case 0:
            if initPending {
                initPending = false
                initialize(allowDeferral: false)
            }
            updateInterrupts()
            var value = csr[0]
            if value & CSR0.errorSummary != 0 { value |= CSR0.error.mask }
            csr0SeenByGuest = value
            return UInt32(value)
        case 16: return readCSR(1)
        case 17: return readCSR(2)
        case 58: return UInt32(bcr[20])
        case 72: return UInt32(Self.ringCounter(index: rxIndex, length: receiveRingLength))
        case 74: return UInt32(Self.ringCounter(index: txIndex, length: transmitRingLength))
        case 88: return UInt32(csr[89]) << 16 | UInt32(csr[88])
        case let other: return UInt32(csr[other])
        }
    }

    /// Writes CSR `index` (0...127) following the CSR table.
    func writeCSR(_ index: Int, _ value: UInt16) {
        let index = index & 0x7F
        switch CSRTable.access[index] {
        case .readOnly:
            return
        case .readWrite(let mask):
            csr[index] = (csr[index] & ~mask) | (value & mask)
            updateInterrupts()
        case .whileStopped(let mask):
            guard stoppedOrSuspended else { return }
            csr[index] = (csr[index] & ~mask) | (value & mask)
        case .special:
            writeSpecialCSR(index, value)
        }
    }

    private func writeSpecialCSR(_ index: Int, _ value: UInt16) {
        switch index {
        case 0:
            writeCSR0(value)
        case 4:
            let old = csr[4]
            csr[4] = (value & ~CSR4.writeOneToClear) | (old & CSR4.writeOneToClear & ~value)
            if (old ^ csr[4]) & CSR4.disableTransmitPolling.mask != 0 { schedulePoll() }
            updateInterrupts()
        case 5:
            let old = csr[5]
            csr[5] = (value & ~CSR5.writeOneToClear) | (old & CSR5.writeOneToClear & ~value)
            if old & CSR5.suspend.mask != 0, csr[5] & CSR5.suspend.mask == 0 { resumeFromSuspend() }
            if old & CSR5.suspend.mask == 0, csr[5] & CSR5.suspend.mask != 0 { pollTimer?.cancel() }
            updateInterrupts()
        case 7:
            // The Am79C973's CSR7: STINT (bit 11) is write-one-to-clear, the rest read/write.
            guard chip == .am79C973 else { return }
            csr[7] = (value & ~0x0800) | (csr[7] & 0x0800 & ~value)
            updateInterrupts()
        case 15:
            // MODE takes writes only while stopped or suspended (Linux suspends around set_multicast_list).
            guard stoppedOrSuspended else { return }
            csr[15] = value
            port.setPromiscuous(value & CSR15.promiscuous.mask != 0)
        case 16, 17:
            writeCSR(index - 15, value)
        case 58:
            writeBCR(20, value)
        case 72, 74:
            guard stoppedOrSuspended else { return }
            if index == 72 {
                rxIndex = Self.ringIndex(counter: value, length: receiveRingLength)
            } else {
                txIndex = Self.ringIndex(counter: value, length: transmitRingLength)
            }
        case 76, 78:
            guard stoppedOrSuspended else { return }
            csr[index] = value
            rxIndex %= receiveRingLength
            txIndex %= transmitRingLength
        default:
            return
        }
    }

    /// CSR0 write: interrupt flags the guest has seen are cleared by ones, IENA follows the value, TDMD is set-only,
    /// and STOP, INIT and STRT act on their rising edge (STOP wins when all three are written).
    private func writeCSR0(_ value: UInt16) {
        var state = csr[0]
        state &= ~(value & CSR0.writeOneToClear & csr0SeenByGuest)
        state =
            (state & ~CSR0.interruptEnable.mask)
            | (value & (CSR0.interruptEnable.mask | CSR0.transmitDemand.mask))
        csr[0] = state
        var commands = value & 0x7
        if commands == 0x7 { commands = CSR0.stop.mask }
        if commands & CSR0.stop.mask != 0, csr[0] & CSR0.stop.mask == 0 { stop() }
        if commands & CSR0.initialize.mask != 0, csr[0] & CSR0.initialize.mask == 0 {
            initialize(allowDeferral: commands & CSR0.start.mask == 0)
        }
        if commands & CSR0.start.mask != 0, csr[0] & CSR0.start.mask == 0 { start() }
        if csr[0] & CSR0.transmitDemand.mask != 0 { transmitPass() }
        updateInterrupts()
    }

    // MARK: Ring registers

    /// The receive ring length from CSR76 (two's complement; 0 means 512).
    var receiveRingLength: Int { Self.decodeRingLength(csr[76]) }
    /// The transmit ring length from CSR78 (two's complement; 0 means 512).
    var transmitRingLength: Int { Self.decodeRingLength(csr[78]) }

    static func decodeRingLength(_ value: UInt16) -> Int {
        let length = (0x10000 - Int(value)) & 0xFFFF
        return length == 0 ? 512 : length
    }

    static func encodeRingLength(_ length: Int) -> UInt16 { UInt16(truncatingIfNeeded: 0x10000 - length) }

    /// The ring counter (CSR72/74): two's complement, zero at the last descriptor of the ring.
    static func ringCounter(index: Int, length: Int) -> UInt16 { UInt16(truncatingIfNeeded: index + 1 - length) }

    /// The descriptor index a written ring counter names: the inverse of ``ringCounter(index:length:)`` modulo 2^16
    /// (rings may be up to 65535 long, so the counter is not a signed 16-bit number), folded into the ring.
    static func ringIndex(counter: UInt16, length: Int) -> Int {
        ((Int(counter) + length - 1) & 0xFFFF) % length
    }
}
