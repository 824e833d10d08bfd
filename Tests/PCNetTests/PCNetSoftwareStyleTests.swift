import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

@Suite("PCnet software styles, initialization blocks and BCR20")
struct PCNetSoftwareStyleTests {
    /// SWSTYLE 0 on 32 MB of RAM with every structure above 16 MB: the 16-bit init block and 8-byte descriptors carry
    /// 24-bit addresses, and the chip takes address bits 31:24 from CSR2's high byte.
    @Test(arguments: pcnetModels)
    func style0UsesTheHighAddressByteFromCSR2(model: CardModel) throws {
        let bench = try PCNetBench(model, ramSize: 32 << 20)
        let ram = bench.ram
        let high: UInt64 = 0x0100_0000
        bench.driver.reset()
        bench.setBCR(20, 0)
        #expect(bench.bcr(20) == 0x0200)

        // 16-bit init block: MODE, PADR, LADRF, RDRA|RLEN<<29, TDRA|TLEN<<29 (4 entries each).
        var block: [UInt8] = [0, 0] + bench.mac.bytes + [UInt8](repeating: 0, count: 8)
        for value in [UInt32(0x01_0000) | 2 << 29, UInt32(0x02_0000) | 2 << 29] {
            block += (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
        }
        try ram.store(block, at: high + 0x1000)
        let receive = DescriptorRing(ram: ram, base: high + 0x01_0000, style: 0)
        let transmit = DescriptorRing(ram: ram, base: high + 0x02_0000, style: 0)
        for index in 0..<4 {
            try receive.put(index, buffer: 0x10_0000 + UInt32(index) * 2048, length: 1544, status: StatusBits.own)
        }
        bench.setCSR(1, 0x1000)
        bench.setCSR(2, 0x0100)  // IADR[31:24] = 0x01, IADR[23:16] = 0x00
        bench.setCSR(0, CSR0Bits.initialize)
        #expect(bench.csr(0) & CSR0Bits.idon != 0)
        #expect(bench.csr(76) == 0xFFFC)  // two's complement of 4
        #expect(bench.csr(78) == 0xFFFC)
        bench.start()

        let incoming = makeFrame(to: bench.mac, length: 100)
        bench.harness.receive(incoming)
        #expect(try receive.status(0) == StatusBits.stp | StatusBits.enp)
        #expect(try receive.messageLength(0) == 104)
        #expect(try ram.load(at: high + 0x10_0000, count: 100) == incoming)
        #expect(try ram.load(at: 0x10_0000, count: 100) == [UInt8](repeating: 0, count: 100))
        #expect(bench.csr(0) & CSR0Bits.rint != 0)

        let outgoing = makeFrame(to: peerAddress, length: 80, seed: 9)
        try ram.store(outgoing, at: high + 0x20_0000)
        try transmit.put(0, buffer: 0x20_0000, length: outgoing.count, status: 0x8300)
        bench.transmitDemand()
        #expect(bench.sentFrames() == [outgoing])
        #expect(try transmit.status(0) == StatusBits.stp | StatusBits.enp)
    }

    /// The 32-bit styles: style 2 keeps the buffer address in word 0 and TMD2/RMD2 in word 2; style 3 swaps them.
    @Test(arguments: pcnetModels, [2, 3])
    func style2And3DescriptorWords(model: CardModel, style: Int) throws {
        let bench = try PCNetBench.running(model, style: style)
        let ram = bench.ram
        let incoming = makeFrame(to: bench.mac, length: 200)
        bench.harness.receive(incoming)
        let descriptor = Layout.receiveRing
        let bufferWord: UInt64 = style == 2 ? 0 : 8
        let countWord: UInt64 = style == 2 ? 8 : 0
        #expect(try ram.loadLittleEndian(UInt32.self, at: descriptor + bufferWord) == UInt32(Layout.receiveBuffers))
        #expect(try ram.loadLittleEndian(UInt32.self, at: descriptor + countWord) & 0xFFF == 204)
        #expect(try ram.loadLittleEndian(UInt16.self, at: descriptor + 4) == DescriptorRing.byteCount(1544))
        #expect(try ram.loadLittleEndian(UInt16.self, at: descriptor + 6) & 0xFF00 == 0x0300)
        #expect(try ram.load(at: Layout.receiveBuffers, count: 200) == incoming)

        // A transmit error lands in TMD2, wherever the style puts it.
        bench.harness.setLink(up: false)
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 0)
        bench.transmitDemand()
        let errors = try ram.loadLittleEndian(UInt32.self, at: Layout.transmitRing + countWord)
        #expect(errors & TransmitErrorBits.lcar != 0)
        #expect(
            try ram.loadLittleEndian(UInt32.self, at: Layout.transmitRing + bufferWord)
                == UInt32(bench.transmitBuffer(0)))
    }

    /// The 16-bit style's TMD3 holds the transmit errors.
    @Test(arguments: pcnetModels)
    func style0TransmitErrorsInTMD3(model: CardModel) throws {
        let bench = try PCNetBench.running(model, style: 0)
        bench.harness.setLink(up: false)
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 0)
        bench.transmitDemand()
        let tmd3 = try bench.ram.loadLittleEndian(UInt16.self, at: Layout.transmitRing + 6)
        #expect(tmd3 & 0x0800 != 0)  // LCAR
        #expect(try bench.transmitRing.status(0) == StatusBits.err | StatusBits.stp | StatusBits.enp)
    }

    /// The 32-bit init block: MODE, RLEN and TLEN nibbles, PADR, LADRF and both ring addresses.
    @Test(arguments: pcnetModels)
    func initBlock32(model: CardModel) throws {
        let bench = try PCNetBench(model)
        bench.driver.reset()
        bench.setBCR(20, 2)
        let padr = MACAddress("02:11:22:33:44:55")!
        var block: [UInt8] = [0x80, 0x00, 3 << 4, 6 << 4] + padr.bytes + [0, 0]
        block += [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
        block += [0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00]  // RDRA 0x30000, TDRA 0x40000
        try bench.ram.store(block, at: 0x1000)
        bench.setCSR(1, 0x1000)
        bench.setCSR(2, 0)
        bench.setCSR(0, CSR0Bits.initialize)
        #expect(
            bench.csr(0) & (CSR0Bits.idon | CSR0Bits.initialize | CSR0Bits.stop) == CSR0Bits.idon | CSR0Bits.initialize)
        #expect(bench.csr(15) == 0x0080)
        #expect(bench.csr(76) == UInt16(truncatingIfNeeded: -8))
        #expect(bench.csr(78) == UInt16(truncatingIfNeeded: -64))
        #expect(bench.csr(12) == 0x1102 && bench.csr(13) == 0x3322 && bench.csr(14) == 0x5544)
        #expect(bench.csr(8) == 0x2301 && bench.csr(9) == 0x6745 && bench.csr(10) == 0xAB89 && bench.csr(11) == 0xEFCD)
        #expect(bench.csr(24) == 0 && bench.csr(25) == 3)
        #expect(bench.csr(30) == 0 && bench.csr(31) == 4)
    }

    /// Ring length codes above 9 in the 32-bit init block mean 512 entries.
    @Test(arguments: pcnetModels)
    func ringLengthCodesAreCappedAt512(model: CardModel) throws {
        let bench = try PCNetBench(model)
        bench.driver.reset()
        bench.setBCR(20, 2)
        try bench.ram.store([0, 0, 0xF0, 0xA0] + [UInt8](repeating: 0, count: 24), at: 0x1000)
        bench.setCSR(1, 0x1000)
        bench.setCSR(0, CSR0Bits.initialize)
        #expect(bench.csr(0) & CSR0Bits.idon != 0)
        #expect(bench.csr(76) == UInt16(truncatingIfNeeded: -512))
        #expect(bench.csr(78) == UInt16(truncatingIfNeeded: -512))
    }

    @Test(
        arguments: pcnetModels,
        [
            (UInt16(0), UInt16(0x0200)), (1, 0x0101), (2, 0x0302), (3, 0x0303), (4, 0x0200), (0x00FF, 0x0200),
            (0x0302, 0x0302), (0x0100, 0x0200),
        ])
    func bcr20Normalisation(model: CardModel, written: (UInt16, UInt16)) throws {
        let bench = try PCNetBench(model, ramSize: 1 << 20)
        bench.setBCR(20, 0x0303)
        bench.setBCR(20, written.0)
        #expect(bench.bcr(20) == written.1)
        #expect(bench.csr(58) == written.1)
        // CSR58 is the same register.
        bench.setCSR(58, 3)
        #expect(bench.bcr(20) == 0x0303)
        bench.setCSR(58, written.0)
        #expect(bench.bcr(20) == written.1)
    }

    @Test(arguments: pcnetModels)
    func bcr20IsWritableOnlyWhileStoppedOrSuspended(model: CardModel) throws {
        let bench = try PCNetBench.running(model, style: 2)
        bench.setBCR(20, 0)
        #expect(bench.bcr(20) == 0x0302)
        bench.setCSR(58, 3)
        #expect(bench.csr(58) == 0x0302)
        bench.suspended {
            bench.setCSR(58, 3)
            #expect(bench.bcr(20) == 0x0303)
        }
        bench.stop()
        bench.setBCR(20, 2)
        #expect(bench.bcr(20) == 0x0302)
    }

    /// SWSTYLE 1 (ILACC) uses the 32-bit layout; its descriptors have no ADD_FCS, so only CSR15.DXMTFCS decides.
    @Test(arguments: pcnetModels)
    func style1IgnoresAddFCS(model: CardModel) throws {
        let bench = try PCNetBench.running(model, style: 2)
        let payload = makeFrame(to: peerAddress, length: 64)
        let withFCS = payload + frameCheckSequence(payload)
        bench.stop()
        bench.setCSR(15, 0x0008)  // DXMTFCS
        bench.start()
        // Style 2: ADD_FCS overrides DXMTFCS, so the whole buffer is the frame.
        try bench.queueTransmit(payload, index: 0, status: 0x8300 | StatusBits.addFCS)
        bench.transmitDemand()
        #expect(bench.sentFrames() == [payload])

        bench.stop()
        bench.setBCR(20, 1)
        #expect(bench.bcr(20) == 0x0101)
        bench.setCSR(74, UInt16(truncatingIfNeeded: 1 - 16))  // back to the first of 16 descriptors
        bench.start()
        try bench.queueTransmit(withFCS, index: 0, status: 0x8300 | StatusBits.addFCS)
        bench.transmitDemand()
        // Style 1: the guest supplied the FCS, so the chip strips it from what the port carries.
        #expect(bench.sentFrames() == [payload])
    }
}
