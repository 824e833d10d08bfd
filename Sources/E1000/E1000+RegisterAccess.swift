import NICCore

/// Register access through BAR0 and through the IOADDR/IODATA window.
///
/// Registers are 32 bits wide. A narrower write merges into the register's stored value (for the write-one-to-set and
/// write-one-to-clear registers, into zeros) and then acts as a full write; a narrower read performs the full read,
/// side effects included, and returns the addressed bytes. An 8-byte access is two 32-bit accesses, low dword first.
/// An access that straddles two registers reads 0 and writes nothing; unknown offsets read 0 and ignore writes.
extension E1000Card {
    package func readRegister(bar: Int, offset: UInt64, width: Int) -> UInt64 {
        let result: UInt64
        switch bar {
        case Self.memoryBAR: result = readMemory(offset: offset, width: width)
        case Self.ioBAR: result = readIO(offset: offset, width: width)
        default: result = Self.allOnes(width: width)
        }
        updateInterrupts()
        return result
    }

    package func writeRegister(bar: Int, offset: UInt64, width: Int, value: UInt64) {
        switch bar {
        case Self.memoryBAR: writeMemory(offset: offset, width: width, value: value)
        case Self.ioBAR: writeIO(offset: offset, width: width, value: value)
        default: break
        }
        updateInterrupts()
    }

    // MARK: Widths

    private func readMemory(offset: UInt64, width: Int) -> UInt64 {
        guard offset < Self.registerSpaceSize else { return 0 }
        let index = Int(offset >> 2)
        let lane = Int(offset & 3)
        if width == 8 {
            guard lane == 0 else { return 0 }
            return UInt64(readDword(index)) | UInt64(readDword(index + 1)) << 32
        }
        guard lane + width <= 4 else { return 0 }
        return UInt64(readDword(index) >> (8 * UInt32(lane))) & Self.allOnes(width: width)
    }

    private func writeMemory(offset: UInt64, width: Int, value: UInt64) {
        guard offset < Self.registerSpaceSize else { return }
        let index = Int(offset >> 2)
        let lane = Int(offset & 3)
        if width == 8 {
            guard lane == 0 else { return }
            writeDword(index, UInt32(truncatingIfNeeded: value))
            writeDword(index + 1, UInt32(truncatingIfNeeded: value >> 32))
            return
        }
        guard lane + width <= 4 else { return }
        guard width < 4 else {
            writeDword(index, UInt32(truncatingIfNeeded: value))
            return
        }
        guard let definition = RegisterTable.definition(at: index, chip: presence) else { return }
        let shift = 8 * UInt32(lane)
        let laneMask = UInt32(truncatingIfNeeded: Self.allOnes(width: width)) << shift
        let base: UInt32
        switch definition.kind {
        case .interruptCause, .interruptSet, .interruptMaskSet, .interruptMaskClear: base = 0
        case .control: base = regs[index] & ~(CTRL.reset.mask | CTRL.phyReset.mask)
        default: base = regs[index]
        }
        writeDword(index, (base & ~laneMask) | (UInt32(truncatingIfNeeded: value) << shift & laneMask))
    }

    // MARK: I/O window

    private func readIO(offset: UInt64, width: Int) -> UInt64 {
        switch offset {
        case 0..<4 where Int(offset) + width <= 4:
            return UInt64(ioAddress >> (8 * UInt32(offset))) & Self.allOnes(width: width)
        case 4..<8 where Int(offset - 4) + width <= 4:
            guard let target = ioTarget else { return 0 }
            return readMemory(offset: target + (offset - 4), width: width)
        default:
            return Self.allOnes(width: width)
        }
    }

    private func writeIO(offset: UInt64, width: Int, value: UInt64) {
        switch offset {
        case 0..<4 where Int(offset) + width <= 4:
            let shift = 8 * UInt32(offset)
            let mask = UInt32(truncatingIfNeeded: Self.allOnes(width: width)) << shift
            ioAddress = (ioAddress & ~mask) | (UInt32(truncatingIfNeeded: value) << shift & mask)
        case 4..<8 where Int(offset - 4) + width <= 4:
            guard let target = ioTarget else { return }
            writeMemory(offset: target + (offset - 4), width: width, value: value)
        default:
            break
        }
    }

    /// The BAR0 offset IOADDR selects, or `nil` past the register file.
    private var ioTarget: UInt64? {
        let target = UInt64(ioAddress & ~3)
        return target < Self.registerSpaceSize ? target : nil
    }

    // MARK: Dword dispatch

    /// A full 32-bit read of dword `index`, with the register's read side effects.
    func readDword(_ index: Int) -> UInt32 {
        guard let definition = RegisterTable.definition(at: index, chip: presence) else { return 0 }
        switch definition.kind {
        case .statistic:
            defer { regs[index] = 0 }
            return regs[index]
        case .statisticHigh:
            defer {
                regs[index] = 0
                regs[index - 1] = 0
            }
            return regs[index]
        case .status:
            return statusValue
        case .control:
            var value = regs[index]
            if chip == .i82543GC, value & CTRL.mdioDirection.mask == 0 {
                value = mdio.output ? value | CTRL.mdio.mask : value & ~CTRL.mdio.mask
            }
            return value
        case .eepromControl:
            return readEEPROMControl()
        case .interruptCause:
            defer { regs[index] = 0 }
            return regs[index]
        case .interruptSet, .interruptMaskClear:
            return 0
        default:
            return regs[index] & definition.readMask
        }
    }

    /// A full 32-bit write of dword `index`, with the register's write side effects.
    func writeDword(_ index: Int, _ value: UInt32) {
        guard let definition = RegisterTable.definition(at: index, chip: presence) else { return }
        let masked = (regs[index] & ~definition.writeMask) | (value & definition.writeMask)
        switch definition.kind {
        case .storage, .interruptThrottle:
            regs[index] = masked
        case .statistic, .statisticHigh, .status:
            break
        case .control:
            writeControl(value)
        case .eepromControl:
            writeEEPROMControl(value)
        case .eepromRead:
            writeEEPROMRead(value)
        case .extendedControl:
            writeExtendedControl(masked)
        case .mdiControl:
            writeMDIControl(value)
        case .interruptCause:
            regs[index] &= ~value
        case .interruptSet:
            raise(value & ICR.all)
        case .interruptMaskSet:
            regs[index] |= value & ICR.all
        case .interruptMaskClear:
            regs[Reg.ims] &= ~value
        case .receiveControl:
            regs[index] = masked
            port.setPromiscuous(masked & RCTL.unicastPromiscuous.mask != 0)
            receivePending()
        case .transmitControl, .transmitTail:
            regs[index] = masked
            transmit()
        case .receiveTail:
            regs[index] = masked
            receiveStalled = false
            receivePending()
        case .receiveDelayTimer:
            regs[index] = masked
            if value & RDTR.flushPartial.mask != 0 { flushReceiveTimers() }
        case .receiveAddress:
            regs[index] = masked
            rebuildAddressFilter()
        }
    }

    /// STATUS: full duplex, 1000 Mb/s, and LU while the link is up.
    var statusValue: UInt32 {
        STATUS.fullDuplex.mask | STATUS.speed(2) | (linkUp ? STATUS.linkUp.mask : 0)
    }

    /// CTRL: RST resets the whole chip and clears itself; PHY_RST holds the PHY in reset until it is cleared again
    /// (82540EM, 82545EM); on the 82543GC the SDP2/SDP3 pins carry MDIO.
    private func writeControl(_ value: UInt32) {
        if value & CTRL.reset.mask != 0 {
            hardReset()
            return
        }
        let previous = regs[Reg.ctrl]
        regs[Reg.ctrl] = value
        if chip.hasMDIC, previous & CTRL.phyReset.mask != 0, value & CTRL.phyReset.mask == 0 {
            phy.reset()
            phy.setLink(up: linkUp)
        }
        driveMDIO(value)
    }

    /// CTRL_EXT: on the 82543GC, SDP4 driven low holds the PHY in reset; releasing it resets the PHY.
    private func writeExtendedControl(_ value: UInt32) {
        let previous = regs[Reg.ctrlExt]
        regs[Reg.ctrlExt] = value
        guard chip == .i82543GC else { return }
        let inReset = { (control: UInt32) in
            control & CTRLEXT.sdp4Direction.mask != 0 && control & CTRLEXT.sdp4Data.mask == 0
        }
        if inReset(previous), !inReset(value) {
            phy.reset()
            phy.setLink(up: linkUp)
        }
    }
}
