import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

/// The values that tell the two chips apart.
struct ChipIdentity: Sendable, CustomTestStringConvertible {
    var model: CardModel
    var revision: UInt8
    var chipIDLow: UInt16
    var partNumber: UInt32

    var testDescription: String { model.rawValue }

    static let all = [
        ChipIdentity(model: .am79c970a, revision: 0x16, chipIDLow: 0x1003, partNumber: 0x2621),
        ChipIdentity(model: .am79c973, revision: 0x40, chipIDLow: 0x5003, partNumber: 0x2625),
    ]
}

@Suite("PCnet PCI identity and the pcnet32 probe sequence")
struct PCNetProbeTests {
    @Test(arguments: ChipIdentity.all)
    func pciIdentity(chip: ChipIdentity) throws {
        let harness = try CardHarness(model: chip.model)
        let card = harness.card
        #expect(card.configRead(offset: 0x00, width: 4) == 0x2000_1022)
        #expect(card.configRead(offset: 0x08, width: 1) == UInt32(chip.revision))
        #expect(card.configRead(offset: 0x09, width: 1) == 0x00)
        #expect(card.configRead(offset: 0x0A, width: 2) == 0x0200)
        #expect(card.configRead(offset: 0x2C, width: 4) == 0x2000_1022)
        #expect(card.configRead(offset: 0x3D, width: 1) == 1)
        // Nothing decodes until the guest enables it.
        #expect(card.configRead(offset: 0x04, width: 2) & 0x7 == 0)
        #expect(card.barRead(0, offset: 0x10, width: 2) == 0xFFFF)
    }

    @Test(arguments: pcnetModels)
    func barSizing(model: CardModel) throws {
        let harness = try CardHarness(model: model)
        let card = harness.card
        #expect(card.configRead(offset: 0x10, width: 4) & 0x3 == 0x1)
        card.configWrite(offset: 0x10, width: 4, value: 0xFFFF_FFFF)
        #expect(card.configRead(offset: 0x10, width: 4) == 0xFFFF_FFE1)  // 32 bytes of I/O
        card.configWrite(offset: 0x14, width: 4, value: 0xFFFF_FFFF)
        #expect(card.configRead(offset: 0x14, width: 4) == 0xFFFF_FFE0)  // 32 bytes of memory, 32-bit
        for bar in 2..<6 {
            card.configWrite(offset: 0x10 + 4 * bar, width: 4, value: 0xFFFF_FFFF)
            #expect(card.configRead(offset: 0x10 + 4 * bar, width: 4) == 0)
        }
        card.configWrite(offset: 0x10, width: 4, value: 0xC001)
        card.configWrite(offset: 0x14, width: 4, value: 0xFEBF_1000)
        #expect(card.configRead(offset: 0x10, width: 4) == 0xC001)
        #expect(card.configRead(offset: 0x14, width: 4) == 0xFEBF_1000)
    }

    @Test(arguments: ChipIdentity.all)
    func linuxProbeSequence(chip: ChipIdentity) throws {
        let bench = try PCNetBench(chip.model)
        let harness = bench.harness
        // pcnet32_wio_reset: a 16-bit read of the RESET port.
        #expect(harness.read(bar: 0, offset: 0x14, width: 2) == 0)
        // pcnet32_wio_read_csr(0) == 4.
        harness.write(bar: 0, offset: 0x12, width: 2, value: 0)
        #expect(harness.read(bar: 0, offset: 0x10, width: 2) == 4)
        // pcnet32_wio_check: RAP reads back 88.
        harness.write(bar: 0, offset: 0x12, width: 2, value: 88)
        #expect(harness.read(bar: 0, offset: 0x12, width: 2) == 88)
        let low = UInt32(harness.read(bar: 0, offset: 0x10, width: 2))
        harness.write(bar: 0, offset: 0x12, width: 2, value: 89)
        let high = UInt32(harness.read(bar: 0, offset: 0x10, width: 2))
        let version = low | high << 16
        #expect(low == UInt32(chip.chipIDLow))
        #expect(high == 0x0262)
        #expect(version & 0xFFF == 3)
        #expect((version >> 12) & 0xFFFF == chip.partNumber)

        let probe = try bench.driver.probe()
        #expect(probe.partNumber == chip.partNumber)
        #expect(probe.wordIO)
    }

    @Test(arguments: pcnetModels)
    func registerAddressPortIsSevenBits(model: CardModel) throws {
        let bench = try PCNetBench(model)
        bench.harness.write(bar: 0, offset: 0x12, width: 2, value: 0xFFD8)
        #expect(bench.harness.read(bar: 0, offset: 0x12, width: 2) == 0x58)
        // CSR88 through the masked index.
        #expect(bench.harness.read(bar: 0, offset: 0x10, width: 2) & 0xFFF == 3)
    }

    @Test(arguments: pcnetModels)
    func addressPROM(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        let harness = bench.harness
        let prom = (0..<16).map { UInt8(harness.read(bar: 0, offset: UInt64($0), width: 1)) }
        #expect(Array(prom[0..<6]) == bench.mac.bytes)
        #expect(Array(prom[6..<12]) == [0, 0, 0, 0x11, 0, 0])
        let sum = (prom[0..<12] + prom[14..<16]).reduce(UInt16(0)) { $0 &+ UInt16($1) }
        #expect(UInt16(prom[12]) | UInt16(prom[13]) << 8 == sum)
        #expect(prom[14] == 0x57 && prom[15] == 0x57)  // "WW"
        // Word reads in WIO and any width through the memory alias.
        #expect(harness.read(bar: 0, offset: 0x0E, width: 2) == 0x5757)
        #expect(harness.read(bar: 1, offset: 0x0C, width: 4) == UInt64(sum) | 0x5757_0000)
        #expect(harness.read(bar: 1, offset: 0x00, width: 2) == UInt64(prom[0]) | UInt64(prom[1]) << 8)
        // The station address registers start out as the PROM's address.
        let words = (12...14).map { bench.csr($0) }
        let registerBytes = words.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        #expect(registerBytes == bench.mac.bytes)
    }

    @Test(arguments: pcnetModels)
    func apromIsReadOnlyUnlessWriteEnabled(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        let harness = bench.harness
        let original = harness.read(bar: 0, offset: 0, width: 1)
        harness.write(bar: 0, offset: 0, width: 1, value: ~original & 0xFF)
        #expect(harness.read(bar: 0, offset: 0, width: 1) == original)
        bench.setBCR(2, bench.bcr(2) | 0x0100)  // APROMWE
        harness.write(bar: 0, offset: 0, width: 2, value: 0xAAAA)  // word writes never reach the PROM
        #expect(harness.read(bar: 0, offset: 0, width: 1) == original)
        harness.write(bar: 0, offset: 0, width: 1, value: 0x5A)
        #expect(harness.read(bar: 0, offset: 0, width: 1) == 0x5A)
    }

    @Test(arguments: ChipIdentity.all)
    func doubleWordIOSwitch(chip: ChipIdentity) throws {
        let bench = try PCNetBench(chip.model, ramSize: 1 << 20)
        let harness = bench.harness
        // A 32-bit access before the switch is not a DWIO port.
        #expect(harness.read(bar: 0, offset: 0x10, width: 4) == 0xFFFF_FFFF)
        bench.driver.switchToDoubleWordIO()
        // Word-width accesses to the register ports read all-ones now.
        for offset: UInt64 in [0x10, 0x12, 0x14, 0x16] {
            #expect(harness.read(bar: 0, offset: offset, width: 2) == 0xFFFF)
        }
        // The DWIO reset port, then CSR0 == 4 and the RAP check through the DWIO ports.
        #expect(harness.read(bar: 0, offset: 0x18, width: 4) == 0)
        harness.write(bar: 0, offset: 0x14, width: 4, value: 0)
        #expect(harness.read(bar: 0, offset: 0x10, width: 4) == 4)
        harness.write(bar: 0, offset: 0x14, width: 4, value: 88)
        #expect(harness.read(bar: 0, offset: 0x14, width: 4) == 88)
        // CSR88 through a DWIO read is the whole 32-bit chip ID.
        #expect(harness.read(bar: 0, offset: 0x10, width: 4) == 0x0262_0000 | UInt64(chip.chipIDLow))
        // BCR18.DWIO reads back set.
        #expect(bench.bcr(18) & 0x0080 != 0)
        // The APROM takes double-word reads in DWIO and refuses word reads.
        let mac = bench.mac.bytes.map(UInt64.init)
        #expect(harness.read(bar: 0, offset: 0, width: 4) == mac[0] | mac[1] << 8 | mac[2] << 16 | mac[3] << 24)
        #expect(harness.read(bar: 0, offset: 0, width: 2) == 0xFFFF)
        #expect(harness.read(bar: 0, offset: 0, width: 1) == mac[0])
        // Writes through the DWIO data ports land in the registers.
        bench.setCSR(3, 0x5F00)
        #expect(bench.csr(3) == 0x5F00)
    }

    @Test(arguments: pcnetModels)
    func softResetKeepsDWIOAndHardResetClearsIt(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        let harness = bench.harness
        bench.driver.switchToDoubleWordIO()
        bench.setCSR(3, 0x5F00)
        bench.driver.reset()  // S_RESET through the DWIO reset port
        #expect(bench.csr(3) == 0)
        #expect(bench.csr(0) == 4)
        #expect(harness.read(bar: 0, offset: 0x10, width: 2) == 0xFFFF)
        #expect(bench.bcr(18) & 0x0080 != 0)

        bench.card.reset()  // H_RESET
        #expect(harness.read(bar: 0, offset: 0x10, width: 2) == 0xFFFF)  // the function is disabled again
        let fresh = PCNetDriver(harness: harness)
        fresh.enableDevice()
        #expect(harness.read(bar: 0, offset: 0x10, width: 4) == 0xFFFF_FFFF)
        #expect(fresh.readCSR(0) == 4)
        #expect(fresh.readBCR(18) == 0x9001)
        #expect(try fresh.probe().wordIO)
    }

    /// BAR1 is the same register window as memory; each BAR answers only while its space is enabled.
    @Test(arguments: ChipIdentity.all)
    func memoryAliasAndDecodeEnables(chip: ChipIdentity) throws {
        let bench = try PCNetBench(chip.model, ramSize: 1 << 20)
        let harness = bench.harness
        harness.write(bar: 1, offset: 0x12, width: 2, value: 88)
        #expect(harness.read(bar: 1, offset: 0x10, width: 2) == UInt64(chip.chipIDLow))
        #expect(harness.read(bar: 0, offset: 0x12, width: 2) == 88)  // one RAP behind both BARs
        harness.write(bar: 1, offset: 0x12, width: 2, value: 18)
        #expect(harness.read(bar: 1, offset: 0x16, width: 2) == 0x9001)
        // I/O off: BAR0 reads all-ones and ignores writes; BAR1 still works.
        harness.configWrite(0x04, width: 2, value: 0x0006)
        #expect(harness.read(bar: 0, offset: 0x12, width: 2) == 0xFFFF)
        harness.write(bar: 0, offset: 0x12, width: 2, value: 3)
        #expect(harness.read(bar: 1, offset: 0x12, width: 2) == 18)
        // Memory off: BAR1 is dark too.
        harness.configWrite(0x04, width: 2, value: 0x0005)
        #expect(harness.read(bar: 1, offset: 0x00, width: 1) == 0xFF)
        #expect(harness.read(bar: 0, offset: 0x00, width: 1) == UInt64(bench.mac.bytes[0]))
        // A 32-bit write to RDP through BAR1 selects DWIO as well.
        harness.configWrite(0x04, width: 2, value: 0x0007)
        harness.write(bar: 1, offset: 0x10, width: 4, value: 0)
        #expect(harness.read(bar: 0, offset: 0x12, width: 2) == 0xFFFF)
        #expect(harness.read(bar: 0, offset: 0x14, width: 4) == 18)
    }

    /// CSR0 commands: STOP wins over STRT and INIT written with it, and STRT alone runs on what the registers hold.
    @Test(arguments: pcnetModels)
    func csr0Commands(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        #expect(
            bench.csr(0) & 0x00FF == CSR0Bits.iena | CSR0Bits.rxon | CSR0Bits.txon | CSR0Bits.strt | CSR0Bits.initialize
        )
        bench.setCSR(0, 0x0047)  // STOP | STRT | INIT | IENA
        #expect(bench.csr(0) == CSR0Bits.stop)
        #expect(!bench.interrupt)
        bench.setCSR(0, CSR0Bits.strt)
        #expect(bench.csr(0) == CSR0Bits.strt | CSR0Bits.txon | CSR0Bits.rxon)
        let outgoing = makeFrame(to: peerAddress)
        try bench.queueTransmit(outgoing, index: 0)
        bench.transmitDemand()
        #expect(bench.sentFrames() == [outgoing])
        // STOP clears IENA and every flag.
        bench.setCSR(0, CSR0Bits.stop | CSR0Bits.iena)
        #expect(bench.csr(0) == CSR0Bits.stop)
    }

    @Test(arguments: pcnetModels)
    func softResetValues(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        bench.setCSR(3, 0x5F7C)
        bench.setCSR(4, 0x1000)
        bench.setCSR(15, 0xFFFF)
        bench.setCSR(8, 0x1234)
        bench.setCSR(112, 7)
        #expect(bench.csr(15) == 0xFFFF)
        #expect(bench.csr(8) == 0x1234)
        bench.driver.reset()
        #expect(bench.driver.readRAP() == 0)
        #expect(bench.csr(0) == 0x0004)
        #expect(bench.csr(3) == 0)
        #expect(bench.csr(4) == 0x0115)
        #expect(bench.csr(5) == 0)
        #expect(bench.csr(8) == 0)
        #expect(bench.csr(15) == 0x21C4)
        #expect(bench.csr(80) == 0x1410)
        #expect(bench.csr(112) == 0)
    }

    /// H_RESET returns every CSR to its power-on value, not only those S_RESET touches.
    @Test(arguments: pcnetModels)
    func hardResetClearsEveryCSR(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.stop()
        bench.setCSR(47, 0xF000)
        bench.setCSR(1, 0x1234)
        bench.setCSR(15, 0x0080)
        bench.setCSR(7, 0x0400)
        bench.setCSR(0, CSR0Bits.iena)
        bench.card.reset()
        let fresh = PCNetDriver(harness: bench.harness)
        fresh.enableDevice()
        for index in [1, 2, 7, 15, 24, 25, 30, 31, 47] {
            #expect(fresh.readCSR(index) == 0, "CSR\(index)")
        }
        #expect(fresh.readCSR(0) == 4)
        #expect(fresh.readCSR(4) == 0x0115)
    }

    @Test(arguments: pcnetModels)
    func hardResetValues(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        #expect(bench.bcr(2) == 0x0002)
        #expect(bench.bcr(9) == 0)
        #expect(bench.bcr(18) == 0x9001)
        #expect(bench.bcr(20) == 0x0200)
        #expect(bench.csr(58) == 0x0200)
        #expect(bench.bcr(4) & 0x7FFF == 0x00C0)
        #expect(bench.csr(88) & 0xFFF == 3)
        #expect(bench.csr(89) == 0x0262)
    }
}
