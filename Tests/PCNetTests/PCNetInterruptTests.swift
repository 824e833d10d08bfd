import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

/// A CSR0 interrupt source, how to make the card raise it, and its CSR3 mask (the same bit position).
enum InterruptSource: String, CaseIterable, Sendable {
    case rint, tint, idon, miss, merr, babl

    var flag: UInt16 {
        switch self {
        case .rint: return CSR0Bits.rint
        case .tint: return CSR0Bits.tint
        case .idon: return CSR0Bits.idon
        case .miss: return CSR0Bits.miss
        case .merr: return CSR0Bits.merr
        case .babl: return CSR0Bits.babl
        }
    }

    /// CSR3 masks the source at the same bit position.
    var mask: UInt16 { flag }

    func trigger(_ bench: PCNetBench) throws {
        switch self {
        case .rint:
            bench.harness.receive(makeFrame(to: bench.mac))
        case .tint:
            try bench.driver.transmit(makeFrame(to: peerAddress))
        case .idon:
            bench.stop()
            bench.setCSR(0, CSR0Bits.initialize | CSR0Bits.iena)
        case .miss:
            try bench.receiveRing.put(0, buffer: UInt32(bench.receiveBuffer(0)), length: 1544, status: 0)
            bench.harness.receive(makeFrame(to: bench.mac))
        case .merr:
            try bench.transmitRing.put(0, buffer: 0xF000_0000, length: 64, status: 0x8300)
            bench.transmitDemand()
        case .babl:
            try bench.driver.transmit(makeFrame(to: peerAddress, length: 1600))
        }
    }
}

@Suite("PCnet interrupt sources, masks and the INTA pin")
struct PCNetInterruptTests {
    /// Every CSR0 source sets its flag, INTR and the pin while unmasked; with its CSR3 mask set the flag still shows
    /// but INTR and the pin stay low.
    @Test(arguments: pcnetModels, InterruptSource.allCases)
    func sourceAndMask(model: CardModel, source: InterruptSource) throws {
        let unmasked = try PCNetBench.running(model)
        unmasked.setCSR(3, 0x5F00 & ~source.mask)
        #expect(!unmasked.interrupt)
        try source.trigger(unmasked)
        #expect(unmasked.interrupt)
        let raised = unmasked.csr(0)
        #expect(raised & source.flag != 0)
        #expect(raised & CSR0Bits.intr != 0)

        let masked = try PCNetBench.running(model)
        masked.setCSR(3, 0x5F00)
        try source.trigger(masked)
        #expect(!masked.interrupt)
        let quiet = masked.csr(0)
        #expect(quiet & source.flag != 0)
        #expect(quiet & CSR0Bits.intr == 0)
        // Clearing the mask lets the pending flag through at once.
        masked.setCSR(3, 0x5F00 & ~source.mask)
        #expect(masked.interrupt)
        #expect(masked.csr(0) & CSR0Bits.intr != 0)
    }

    /// ERR summarises BABL, CERR, MISS and MERR.
    @Test(arguments: pcnetModels, [InterruptSource.babl, .miss, .merr])
    func errorSummary(model: CardModel, source: InterruptSource) throws {
        let bench = try PCNetBench.running(model)
        #expect(bench.csr(0) & CSR0Bits.err == 0)
        try source.trigger(bench)
        #expect(bench.csr(0) & CSR0Bits.err != 0)
        bench.acknowledge()
        #expect(bench.csr(0) & CSR0Bits.err == 0)
    }

    @Test(arguments: pcnetModels)
    func interruptEnableGatesThePin(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(0, 0)  // IENA off
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(!bench.interrupt)
        #expect(bench.csr(0) & (CSR0Bits.intr | CSR0Bits.rint) == CSR0Bits.intr | CSR0Bits.rint)
        bench.setCSR(0, CSR0Bits.iena)
        #expect(bench.interrupt)
        bench.setCSR(0, 0)
        #expect(!bench.interrupt)
        // The chips predate PCI 2.3: the command register's interrupt-disable bit is not writable.
        bench.setCSR(0, CSR0Bits.iena)
        bench.harness.configWrite(0x04, width: 2, value: 0x0407)
        #expect(bench.card.configRead(offset: 0x04, width: 2) == 0x0007)
        #expect(bench.interrupt)
    }

    /// VirtualBox's quirk: a write of one clears only the CSR0 flags the guest has read.
    @Test(arguments: pcnetModels)
    func writeOneToClearNeedsAPriorRead(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.interrupt)
        bench.setCSR(0, CSR0Bits.rint | CSR0Bits.iena)  // not read yet: ignored
        #expect(bench.interrupt)
        #expect(bench.csr(0) & CSR0Bits.rint != 0)
        // A flag raised after the read survives a write of all the flags.
        try bench.driver.transmit(makeFrame(to: peerAddress))
        bench.setCSR(0, CSR0Bits.rint | CSR0Bits.tint | CSR0Bits.iena)
        #expect(bench.interrupt)
        let after = bench.csr(0)
        #expect(after & CSR0Bits.rint == 0)
        #expect(after & CSR0Bits.tint != 0)
        bench.setCSR(0, CSR0Bits.tint | CSR0Bits.iena)
        #expect(!bench.interrupt)
        #expect(bench.csr(0) & (CSR0Bits.tint | CSR0Bits.intr) == 0)
    }

    @Test(arguments: pcnetModels)
    func transmitOKInterruptDisable(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(5, 0x8000)  // TOKINTD
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.sentFrames().count == 1)
        #expect(bench.csr(0) & CSR0Bits.tint == 0)
        #expect(!bench.interrupt)

        // LTINTEN with LTINT in the descriptor asks for TINT on this frame.
        bench.setCSR(5, 0xC000)
        try bench.driver.transmit(makeFrame(to: peerAddress), extraStatus: StatusBits.ltint)
        #expect(bench.csr(0) & CSR0Bits.tint != 0)
        #expect(bench.interrupt)
        bench.acknowledge()

        // Without LTINT in the descriptor, LTINTEN alone does not.
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.csr(0) & CSR0Bits.tint == 0)

        // Errors interrupt regardless.
        bench.harness.setLink(up: false)
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.csr(0) & CSR0Bits.tint != 0)
        #expect(bench.interrupt)
    }

    @Test(arguments: pcnetModels)
    func userInterruptCommand(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(4, bench.csr(4) | 0x0080)  // UINTCMD
        let csr4 = bench.csr(4)
        #expect(csr4 & 0x0040 != 0)  // UINT
        #expect(csr4 & 0x0080 == 0)
        #expect(bench.csr(0) & CSR0Bits.intr != 0)
        #expect(bench.interrupt)
        bench.setCSR(0, 0)
        #expect(!bench.interrupt)
        bench.setCSR(0, CSR0Bits.iena)
        #expect(bench.interrupt)
        bench.setCSR(4, bench.csr(4))  // writing UINT back as one clears it
        #expect(bench.csr(4) & 0x0040 == 0)
        #expect(!bench.interrupt)
    }

    @Test(arguments: pcnetModels)
    func transmitStartAndItsMask(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(3, CSR0Bits.tint)  // only TXSTRT could interrupt
        #expect(bench.csr(4) & 0x0004 != 0)  // TXSTRTM after reset
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.csr(4) & 0x0008 != 0)  // TXSTRT
        #expect(!bench.interrupt)
        bench.setCSR(4, bench.csr(4) & ~0x0004)  // unmask; the one written to TXSTRT clears it
        #expect(bench.csr(4) & 0x0008 == 0)
        #expect(!bench.interrupt)
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.interrupt)
        #expect(bench.csr(0) & CSR0Bits.intr != 0)
        bench.setCSR(4, bench.csr(4))
        #expect(!bench.interrupt)
    }

    @Test(arguments: pcnetModels)
    func missedFrameCounterOverflowAndItsMask(model: CardModel) throws {
        let bench = try PCNetBench.running(model, receiveOwned: 0)
        bench.setCSR(3, CSR0Bits.miss)  // only MFCO could interrupt
        bench.stop()
        bench.setCSR(112, 0xFFFE)
        bench.start()
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.csr(112) == 0xFFFF)
        #expect(bench.csr(4) & 0x0200 == 0)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.csr(112) == 0)
        #expect(bench.csr(4) & 0x0200 != 0)  // MFCO
        #expect(!bench.interrupt)  // MFCOM is set after reset (and by Linux)
        bench.setCSR(4, bench.csr(4) & ~0x0300)  // unmask without clearing MFCO
        #expect(bench.interrupt)
        bench.setCSR(4, bench.csr(4))  // MFCO is write-one-to-clear
        #expect(bench.csr(4) & 0x0200 == 0)
        #expect(!bench.interrupt)
    }

    /// CSR5's source/enable pairs: the enables read back, the sources cannot be set by the guest, and enables alone
    /// raise nothing.
    @Test(arguments: pcnetModels)
    func csr5Pairs(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let enables: UInt16 = 0x0400 | 0x0100 | 0x0040 | 0x0008  // SINTE SLPINTE EXDINTE MPINTE
        bench.setCSR(5, enables)
        #expect(bench.csr(5) == enables)
        #expect(!bench.interrupt)
        bench.setCSR(5, enables | 0x0A90)  // SINT SLPINT EXDINT MPINT are write-one-to-clear
        #expect(bench.csr(5) == enables)
        #expect(!bench.interrupt)
        #expect(bench.csr(0) & CSR0Bits.intr == 0)
        bench.setCSR(5, 0xC000)
        #expect(bench.csr(5) == 0xC000)  // TOKINTD and LTINTEN are plain bits
    }

    @Test func softwareTimerOnTheAm79C973() throws {
        let bench = try PCNetBench.running(.am79c973)
        bench.setCSR(7, 0x0400)  // STINTE
        bench.setBCR(31, 10)  // 128 µs
        #expect(bench.bcr(31) == 10)
        bench.harness.advance(nanoseconds: 100_000)
        #expect(bench.csr(7) & 0x0800 == 0)
        #expect(!bench.interrupt)
        bench.harness.advance(nanoseconds: 50_000)
        #expect(bench.csr(7) & 0x0800 != 0)  // STINT
        #expect(bench.interrupt)
        bench.setCSR(7, 0x0C00)  // STINT is write-one-to-clear
        #expect(bench.csr(7) & 0x0800 == 0)
        #expect(!bench.interrupt)
        // Without STINTE the timer still runs but stays quiet.
        bench.setCSR(7, 0)
        bench.harness.advance(nanoseconds: 1_000_000)
        #expect(bench.csr(7) & 0x0800 != 0)
        #expect(!bench.interrupt)
    }

    @Test func noSoftwareTimerOnTheAm79C970A() throws {
        let bench = try PCNetBench.running(.am79c970a)
        bench.setCSR(7, 0x0400)
        bench.setBCR(31, 10)
        #expect(bench.csr(7) == 0)
        #expect(bench.bcr(31) == 0)
        bench.harness.advance(nanoseconds: 10_000_000)
        #expect(!bench.interrupt)
    }
}
