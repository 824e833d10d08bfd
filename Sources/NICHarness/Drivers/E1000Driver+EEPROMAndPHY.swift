import NICCards
import NICCore
import NICTrace

extension E1000Driver {
    // MARK: EEPROM (e1000_read_eeprom_microwire)

    private func eecd() -> UInt32 { read(Register.eecd) }

    private func setEECD(_ value: UInt32) {
        write(Register.eecd, value)
        flush()
    }

    /// Reads one EEPROM word: request the EEPROM (not on the 82543GC), raise CS, shift out opcode 110 and a 6-bit
    /// address, shift in 16 bits, drop CS, release.
    public func readEEPROM(word: Int) -> UInt16 {
        var value = eecd()
        if chip != .e82543gc {
            value |= 0x40
            setEECD(value)
            for _ in 0..<4 where eecd() & 0x80 == 0 {}
        }
        value &= ~UInt32(0x05)
        setEECD(value)
        value |= 0x02
        setEECD(value)
        value = shiftOut(value, bits: 0b110, count: 3)
        value = shiftOut(value, bits: UInt32(word & 0x3F), count: 6)
        var result: UInt16 = 0
        value &= ~UInt32(0x0C)
        for _ in 0..<16 {
            result <<= 1
            value |= 0x01
            setEECD(value)
            value = eecd()
            if value & 0x08 != 0 { result |= 1 }
            value &= ~UInt32(0x01)
            setEECD(value)
        }
        value &= ~UInt32(0x03)
        setEECD(value)
        if chip != .e82543gc { setEECD(value & ~UInt32(0x40)) }
        return result
    }

    private func shiftOut(_ start: UInt32, bits: UInt32, count: Int) -> UInt32 {
        var value = start & ~UInt32(0x08)
        for bit in stride(from: count - 1, through: 0, by: -1) {
            value = bits >> UInt32(bit) & 1 != 0 ? value | 0x04 : value & ~UInt32(0x04)
            setEECD(value)
            setEECD(value | 0x01)
            setEECD(value & ~UInt32(0x01))
        }
        value &= ~UInt32(0x04)
        setEECD(value)
        return value
    }

    /// EERD: START with the address, poll DONE, data in bits 31:16. Absent on the 82543GC.
    public func readEEPROMThroughEERD(word: Int) -> UInt16? {
        write(Register.eerd, UInt32(word & 0xFF) << 8 | 1)
        for _ in 0..<8 {
            let value = read(Register.eerd)
            if value & 0x10 != 0 { return UInt16(truncatingIfNeeded: value >> 16) }
        }
        return nil
    }

    // MARK: PHY (MDIC, or MDIO bit-banged through CTRL on the 82543GC)

    /// e1000_read_phy_reg at PHY address 1.
    public func readPHY(register: Int) throws(HarnessError) -> UInt16 {
        if chip == .e82543gc { return bitBangRead(register: register) }
        write(Register.mdic, UInt32(register & 0x1F) << 16 | 1 << 21 | 0x0800_0000)
        for _ in 0..<64 {
            let mdic = read(Register.mdic)
            if mdic & 0x1000_0000 != 0 {
                guard mdic & 0x4000_0000 == 0 else {
                    throw HarnessError("MDIC read of PHY register \(register) failed")
                }
                return UInt16(truncatingIfNeeded: mdic)
            }
        }
        throw HarnessError("MDIC never became ready reading PHY register \(register)")
    }

    /// e1000_write_phy_reg at PHY address 1.
    public func writePHY(register: Int, _ value: UInt16) throws(HarnessError) {
        if chip == .e82543gc { return bitBangWrite(register: register, value) }
        write(Register.mdic, UInt32(value) | UInt32(register & 0x1F) << 16 | 1 << 21 | 0x0400_0000)
        for _ in 0..<64 where read(Register.mdic) & 0x1000_0000 != 0 { return }
        throw HarnessError("MDIC never became ready writing PHY register \(register)")
    }

    private static let mdio: UInt32 = 0x0010_0000
    private static let mdc: UInt32 = 0x0020_0000
    private static let mdioOutput: UInt32 = 0x0100_0000
    private static let mdcOutput: UInt32 = 0x0200_0000

    private func mdioClock(_ ctrl: UInt32) {
        write(Register.ctrl, ctrl | Self.mdc)
        flush()
        write(Register.ctrl, ctrl & ~Self.mdc)
        flush()
    }

    /// e1000_shift_out_mdi_bits: MDIO as output, each bit set up then clocked.
    private func shiftOutMDI(_ data: UInt32, count: Int) {
        var ctrl = read(Register.ctrl) | Self.mdioOutput | Self.mdcOutput
        for bit in stride(from: count - 1, through: 0, by: -1) {
            ctrl = data >> UInt32(bit) & 1 != 0 ? ctrl | Self.mdio : ctrl & ~Self.mdio
            write(Register.ctrl, ctrl)
            flush()
            mdioClock(ctrl)
        }
    }

    /// e1000_shift_in_mdi_bits: MDIO as input, a turnaround clock, 16 bits, a final clock.
    private func shiftInMDI() -> UInt16 {
        var ctrl = read(Register.ctrl)
        ctrl &= ~(Self.mdioOutput | Self.mdio)
        ctrl |= Self.mdcOutput
        write(Register.ctrl, ctrl)
        flush()
        mdioClock(ctrl)
        var data: UInt16 = 0
        for _ in 0..<16 {
            data <<= 1
            write(Register.ctrl, ctrl | Self.mdc)
            flush()
            if read(Register.ctrl) & Self.mdio != 0 { data |= 1 }
            write(Register.ctrl, ctrl & ~Self.mdc)
            flush()
        }
        mdioClock(ctrl)
        return data
    }

    private func bitBangRead(register: Int) -> UInt16 {
        shiftOutMDI(0xFFFF_FFFF, count: 32)
        shiftOutMDI(UInt32(register & 0x1F) | 1 << 5 | 0b10 << 10 | 0b01 << 12, count: 14)
        return shiftInMDI()
    }

    private func bitBangWrite(register: Int, _ value: UInt16) {
        shiftOutMDI(0xFFFF_FFFF, count: 32)
        let frame = UInt32(0b01) << 30 | 0b01 << 28 | 1 << 23 | UInt32(register & 0x1F) << 18 | 0b10 << 16
        shiftOutMDI(frame | UInt32(value), count: 32)
    }
}
