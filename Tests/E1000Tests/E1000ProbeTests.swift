import E1000
import NICCore
import Testing

@Suite("e1000 probe: PCI identity, EEPROM, PHY, reset")
struct E1000ProbeTests {
    @Test(arguments: E1000Chip.allCases)
    func pciIdentity(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        let card = bench.card
        let expected: (device: UInt32, subsystem: UInt32) =
            switch chip {
            case .i82540EM: (0x100E, 0x001E_8086)
            case .i82543GC: (0x1004, 0x1004_8086)
            case .i82545EM: (0x100F, 0x0750_15AD)
            }
        #expect(card.configRead(offset: 0x00, width: 4) == expected.device << 16 | 0x8086)
        #expect(card.configRead(offset: 0x2C, width: 4) == expected.subsystem)
        #expect(card.configRead(offset: 0x08, width: 4) == 0x0200_0002)
        #expect(card.configRead(offset: 0x3D, width: 1) == 1)
        #expect(card.modelName == chip.rawValue)
        // Capabilities: power management, then PCI-X.
        #expect(card.configRead(offset: 0x06, width: 2) & 0x10 != 0)
        let pm = Int(card.configRead(offset: 0x34, width: 1))
        #expect(card.configRead(offset: pm, width: 1) == 0x01)
        #expect(card.configRead(offset: pm + 2, width: 2) == 0x0022)
        card.configWrite(offset: pm + 4, width: 2, value: 0x0103)
        #expect(card.configRead(offset: pm + 4, width: 2) == 0x0103, "power state and PME_En writable")
        let pcix = Int(card.configRead(offset: pm + 1, width: 1))
        #expect(card.configRead(offset: pcix, width: 1) == 0x07)
        #expect(card.configRead(offset: pcix + 1, width: 1) == 0, "end of the list")
        #expect(card.macAddress == E1000Bench.mac)
    }

    @Test(arguments: E1000Chip.allCases)
    func barSizing(chip: E1000Chip) throws {
        let card = try E1000Bench(chip).card
        card.configWrite(offset: 0x10, width: 4, value: 0xFFFF_FFFF)
        #expect(card.configRead(offset: 0x10, width: 4) == 0xFFFE_0000)  // 128 KiB, 32-bit memory
        card.configWrite(offset: 0x18, width: 4, value: 0xFFFF_FFFF)
        #expect(card.configRead(offset: 0x18, width: 4) == 0xFFFF_FFF9)  // 8 bytes of I/O
        for bar in [0x14, 0x1C, 0x20, 0x24] { #expect(card.configRead(offset: bar, width: 4) == 0) }
    }

    @Test(arguments: E1000Chip.allCases)
    func eepromThroughBitBanging(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        let words = (0..<64).map { bench.bitBangEEPROM($0) }
        let mac = E1000Bench.mac.bytes
        #expect(words[0] == UInt16(mac[0]) | UInt16(mac[1]) << 8)
        #expect(words[1] == UInt16(mac[2]) | UInt16(mac[3]) << 8)
        #expect(words[2] == UInt16(mac[4]) | UInt16(mac[5]) << 8)
        #expect(words[0x0D] == chip.deviceID)
        #expect(words[0x0E] == 0x8086)
        #expect(words[0x0B] == chip.subsystemID)
        #expect(words[0x0C] == chip.subsystemVendorID)
        #expect(words.reduce(UInt16(0)) { $0 &+ $1 } == 0xBABA)
    }

    @Test(arguments: E1000Chip.allCases)
    func eepromWritesNeedEWENAndSurviveReset(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        let original = bench.bitBangEEPROM(0x30)
        bench.microwire([(0b101, 3), (0x30, 6), (0x1234, 16)])  // WRITE without EWEN
        #expect(bench.bitBangEEPROM(0x30) == original)
        bench.microwire([(0b10011, 5), (0, 4)])  // EWEN
        bench.microwire([(0b101, 3), (0x30, 6), (0x1234, 16)])
        #expect(bench.read(0x10) & 0x8 != 0, "DO high: ready")
        bench.microwire([(0b10000, 5), (0, 4)])  // EWDS
        bench.microwire([(0b101, 3), (0x31, 6), (0x5678, 16)])
        #expect(bench.bitBangEEPROM(0x30) == 0x1234)
        #expect(bench.bitBangEEPROM(0x31) != 0x5678)
        bench.write(0, bench.read(0) | 1 << 26)
        bench.card.reset()
        bench.card.configWrite(offset: 0x10, width: 4, value: E1000Bench.memoryBase)
        bench.card.configWrite(offset: 0x04, width: 2, value: 0x0007)
        #expect(bench.bitBangEEPROM(0x30) == 0x1234, "contents survive both resets")
    }

    @Test(arguments: [E1000Chip.i82540EM, .i82545EM])
    func eepromThroughEERD(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        for address in [0, 1, 2, 0x0D, 0x3F] {
            #expect(bench.readEERD(address) == bench.bitBangEEPROM(address))
        }
    }

    @Test func the82543GCHasNoEERDAndNoGrant() throws {
        let bench = try E1000Bench(.i82543GC)
        bench.write(0x14, 0x0001)
        #expect(bench.read(0x14) == 0)
        bench.write(0x10, 0x40)
        #expect(bench.read(0x10) & 0x180 == 0)
    }

    @Test func eepromIgnoresPinsWithoutGrant() throws {
        let bench = try E1000Bench(.i82540EM)
        // CS and a start bit without REQ: the EEPROM never sees them, so DO stays high (idle).
        for value: UInt32 in [0x2, 0x6, 0x7, 0x6, 0x2, 0x3, 0x2] { bench.write(0x10, value) }
        #expect(bench.read(0x10) & 0x8 != 0)
        #expect(bench.read(0x10) & 0x100 != 0, "PRES")
    }

    @Test(arguments: [E1000Chip.i82540EM, .i82545EM])
    func phyThroughMDIC(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        let id1 = bench.mdicRead(register: 2)
        #expect(id1 & 0x1000_0000 != 0, "READY")
        #expect(id1 & 0x4000_0000 == 0, "no ERROR")
        #expect(id1 & 0xFFFF == 0x0141)
        #expect(bench.mdicRead(register: 3) & 0xFFFF == 0x0C20)
        let status = bench.mdicRead(register: 1) & 0xFFFF
        #expect(status & 0x0024 == 0x0024, "link up and autonegotiation complete")
        let wrongAddress = bench.mdicRead(phy: 2, register: 2)
        #expect(wrongAddress & 0x5000_0000 == 0x5000_0000, "READY and ERROR")
        // A write lands, and reset (bit 15) clears itself.
        _ = bench.mdicWrite(register: 4, value: 0x01E1)
        #expect(bench.mdicRead(register: 4) & 0xFFFF == 0x01E1)
        _ = bench.mdicWrite(register: 0, value: 0x9140)
        #expect(bench.mdicRead(register: 0) & 0x8000 == 0)
        #expect(bench.mdicRead(register: 4) & 0xFFFF == 0x0DE1, "reset restored the advertisement")
    }

    @Test func phyThroughMDIOBitBangOn82543GC() throws {
        let bench = try E1000Bench(.i82543GC)
        #expect(bench.read(0x20) == 0, "no MDIC")
        #expect(bench.mdioRead(register: 2) == 0x0141)
        #expect(bench.mdioRead(register: 3) == 0x0C50)
        #expect(bench.mdioRead(register: 1) & 0x0024 == 0x0024)
        #expect(bench.mdioRead(phy: 3, register: 2) == 0xFFFF, "only address 1 answers")
        bench.mdioWrite(register: 4, value: 0x0181)
        #expect(bench.mdioRead(register: 4) == 0x0181)
        bench.mdioWrite(phy: 2, register: 4, value: 0x0001)
        #expect(bench.mdioRead(register: 4) == 0x0181)
        // PHY reset through CTRL_EXT SDP4: drive low, then high.
        bench.write(0x18, 0x100)
        bench.write(0x18, 0x110)
        #expect(bench.mdioRead(register: 4) == 0x0DE1)
    }

    @Test(arguments: E1000Chip.allCases)
    func statusFollowsTheCable(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        _ = bench.read(0xC0)
        #expect(bench.read(0x08) & 0x83 == 0x83, "FD, LU, 1000 Mb/s")
        bench.write(0xD0, 0x4)
        bench.card.cableConnected = false
        #expect(bench.read(0x08) & 0x2 == 0)
        #expect(bench.interrupt, "LSC")
        #expect(bench.read(0xC0) & 0x4 != 0)
        #expect(!bench.interrupt)
        bench.card.cableConnected = true
        #expect(bench.read(0x08) & 0x2 != 0)
        #expect(bench.read(0xC0) & 0x4 != 0)
        // Carrier from the attachment counts too.
        bench.card.port.setCarrier(false)
        bench.card.service()
        #expect(bench.read(0x08) & 0x2 == 0)
        #expect(bench.read(0xC0) == 0x4)
    }

    @Test func unattachedCardHasNoLink() throws {
        let bench = try E1000Bench(.i82540EM, attach: false)
        #expect(bench.read(0x08) & 0x2 == 0)
    }

    @Test(arguments: E1000Chip.allCases)
    func resetThroughMMIO(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        bench.write(0xD0, 0x9D)
        bench.write(0x0100, 0x8002)
        bench.write(0x2808, 0x1000)
        bench.write(0x5400, 0x1111_1111)
        bench.write(0x5200, 0xFFFF_FFFF)
        bench.write(0x0038, 0)
        bench.write(0x0000, bench.read(0) | 1 << 26)
        expectResetState(bench)
    }

    @Test(arguments: E1000Chip.allCases)
    func resetThroughIOWindow(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        bench.write(0xD0, 0x9D)
        bench.write(0x0400, 0x10A)
        bench.write(0x3808, 0x1000)
        bench.write(0x5200, 0xFFFF_FFFF)
        #expect(bench.readThroughIO(0x3808) == 0x1000)
        #expect(bench.ioRead(0) == 0x3808, "IOADDR reads back")
        let ctrl = bench.readThroughIO(0)
        bench.writeThroughIO(0, ctrl | 1 << 26)
        expectResetState(bench)
        #expect(bench.read(0x3808) == 0)
    }

    private func expectResetState(_ bench: E1000Bench) {
        #expect(bench.read(0) & 1 << 26 == 0, "RST clears itself")
        #expect(bench.read(0xD0) == 0)
        #expect(bench.read(0x0100) == 0)
        #expect(bench.read(0x2808) == 0)
        #expect(bench.read(0x5200) == 0)
        #expect(bench.read(0x0038) == 0x8100)
        let mac = E1000Bench.mac.bytes
        #expect(
            bench.read(0x5400) == UInt32(mac[0]) | UInt32(mac[1]) << 8 | UInt32(mac[2]) << 16 | UInt32(mac[3]) << 24)
        #expect(bench.read(0x5404) == UInt32(mac[4]) | UInt32(mac[5]) << 8 | 0x8000_0000)
        // The EEPROM survives.
        #expect(bench.bitBangEEPROM(0) == UInt16(mac[0]) | UInt16(mac[1]) << 8)
        let icr = bench.read(0xC0)
        #expect(icr == (bench.chip == .i82543GC ? 0x4 : 0), "the 82543GC raises LSC on reset")
    }

    @Test func pciResetRestoresRegistersAndConfig() throws {
        let bench = try E1000Bench(.i82545EM)
        bench.write(0xD0, 0x4)
        bench.card.reset()
        #expect(bench.card.configRead(offset: 0x04, width: 2) == 0)
        bench.card.configWrite(offset: 0x04, width: 2, value: 0x2)
        bench.card.configWrite(offset: 0x10, width: 4, value: E1000Bench.memoryBase)
        #expect(bench.read(0xD0) == 0)
    }

    @Test(arguments: E1000Chip.allCases)
    func unknownOffsetsAndWidths(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        for offset in [0x0004, 0x0024, 0x0FFC, 0x1_FFFC, 0x8000] {
            bench.write(offset, 0xDEAD_BEEF)
            #expect(bench.read(offset) == 0)
        }
        // Narrow writes merge into the stored value.
        bench.write(0x2808, 0x0001_0000)
        bench.write(0x2809, 0x02, width: 1)
        #expect(bench.read(0x2808) == 0x0001_0200)
        #expect(bench.read(0x280A, width: 2) == 0x0001)
        // 8-byte accesses are two dwords.
        bench.card.barWrite(0, offset: 0x2800, width: 8, value: 0x0000_0001_1234_5670)
        #expect(bench.read(0x2800) == 0x1234_5670)
        #expect(bench.read(0x2804) == 1)
        #expect(bench.card.barRead(0, offset: 0x2800, width: 8) == 0x0000_0001_1234_5670)
        // A straddling access does nothing.
        bench.write(0x2806, 0xFFFF_FFFF)
        #expect(bench.read(0x2804) == 1)
        // The I/O window beyond the register file.
        bench.ioWrite(0, 0x0002_0000)
        #expect(bench.ioRead(4) == 0)
        #expect(bench.ioRead(1, width: 2) == 0x0200)
    }

    @Test(arguments: E1000Chip.allCases)
    func registerTableResetValues(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        #expect(bench.read(0x0000) & 0x0000_0041 == 0x41, "FD and SLU")
        #expect(bench.read(0x5000) == 0x300, "RXCSUM")
        #expect(bench.read(0x0038) == 0x8100, "VET")
        #expect(bench.read(0x1000) == 0x30, "PBA")
        #expect(bench.read(0x2804) == 0)
        bench.write(0x2800, 0xFFFF_FFFF)
        #expect(bench.read(0x2800) == 0xFFFF_FFF0, "RDBAL is 16-byte aligned")
        bench.write(0x3808, 0xFFFF_FFFF)
        #expect(bench.read(0x3808) == 0x000F_FF80, "TDLEN is a multiple of 128")
        bench.write(0x3818, 0xFFFF_FFFF)
        #expect(bench.read(0x3818) == 0xFFFF, "TDT is 16 bits")
        #expect(bench.read(0x282C) == 0)
        bench.write(0x282C, 0x20)
        #expect(bench.read(0x282C) == (chip == .i82543GC ? 0 : 0x20), "RADV only from the 82540 on")
    }
}
