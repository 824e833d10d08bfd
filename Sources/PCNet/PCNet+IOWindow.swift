import NICCore

/// The 32-byte register window shared by BAR0 (I/O) and BAR1 (memory): the address PROM at 0x00-0x0F, then the
/// register ports at 0x10-0x1F. In word I/O mode (WIO) the ports are RDP 0x10, RAP 0x12, RESET 0x14, BDP 0x16, all
/// 16 bits wide; in double-word mode (DWIO) they are RDP 0x10, RAP 0x14, RESET 0x18, BDP 0x1C, 32 bits wide. A
/// 32-bit write to RDP in WIO mode switches the chip to DWIO; accesses of the wrong width read all-ones and do
/// nothing.
extension PCNetCard {
    /// Whether the chip is in double-word I/O mode (BCR18 bit 7).
    var doubleWordIO: Bool { bcr[18] & BCR18.doubleWordIO.mask != 0 }

    private enum Port {
        case dataCSR, address, reset, dataBCR
    }

    private func port(at local: Int, width: Int) -> Port? {
        switch (doubleWordIO, width, local) {
        case (false, 2, 0x0), (true, 4, 0x0): return .dataCSR
        case (false, 2, 0x2), (true, 4, 0x4): return .address
        case (false, 2, 0x4), (false, 1, 0x4), (true, 4, 0x8): return .reset
        case (false, 2, 0x6), (true, 4, 0xC): return .dataBCR
        default: return nil
        }
    }

    package func readRegister(bar: Int, offset: UInt64, width: Int) -> UInt64 {
        let offset = Int(offset & 0x1F)
        if offset < 0x10 { return readAPROM(offset, width: width, viaMemory: bar == 1) }
        guard let port = port(at: offset & 0x0F, width: width) else { return Self.allOnes(width: width) }
        switch port {
        case .dataCSR:
            let value = readCSR(rap)
            return UInt64(doubleWordIO ? value : value & 0xFFFF)
        case .address:
            return UInt64(rap)
        case .reset:
            softReset()
            return 0
        case .dataBCR:
            return UInt64(readBCR(rap))
        }
    }

    package func writeRegister(bar: Int, offset: UInt64, width: Int, value: UInt64) {
        let offset = Int(offset & 0x1F)
        if offset < 0x10 {
            writeAPROM(offset, width: width, value: value)
            return
        }
        let local = offset & 0x0F
        if !doubleWordIO, width == 4, local == 0 {
            // A double-word write to RDP switches the chip to DWIO; the write itself goes nowhere.
            bcr[18] |= BCR18.doubleWordIO.mask
            return
        }
        guard let port = port(at: local, width: width) else { return }
        let word = UInt16(truncatingIfNeeded: value)
        switch port {
        case .dataCSR: writeCSR(rap, word)
        case .address: rap = Int(word & 0x7F)
        case .reset: break
        case .dataBCR: writeBCR(rap, word)
        }
    }

    private func readAPROM(_ offset: Int, width: Int, viaMemory: Bool) -> UInt64 {
        // Through the I/O BAR, word reads need WIO and double-word reads DWIO; the memory alias takes any width.
        let legal =
            width == 1 || viaMemory || (width == 2 && !doubleWordIO) || (width == 4 && doubleWordIO)
        guard legal, width <= 4 else { return Self.allOnes(width: width) }
        var value: UInt64 = 0
        for i in 0..<width { value |= UInt64(aprom[(offset + i) & 0x0F]) << (8 * UInt64(i)) }
        return value
    }

    private func writeAPROM(_ offset: Int, width: Int, value: UInt64) {
        // Byte writes only, and only while BCR2.APROMWE is set.
        guard width == 1, bcr[2] & BCR2.apromWriteEnable.mask != 0 else { return }
        aprom[offset & 0x0F] = UInt8(truncatingIfNeeded: value)
    }
}
