import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

@Suite("PCnet against a hostile guest: DMA faults, INIT, timers and access widths", .timeLimit(.minutes(1)))
struct PCNetHostileDMATests {
    // MARK: DMA faults

    /// Beyond RAM, wrapping past 2^32, and straddling the end of RAM.
    @Test(arguments: pcnetModels, [UInt32(0xF000_0000), 0xFFFF_FFF0, 0x00FF_FFF0])
    func transmitBufferOutsideRAM(model: CardModel, buffer: UInt32) throws {
        let bench = try PCNetBench.running(model)
        try bench.transmitRing.put(0, buffer: buffer, length: 64, status: 0x8300)
        bench.transmitDemand()
        #expect(bench.reportedMemoryError())
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("dma_faults")! >= 1)
        #expect(bench.ram.faultCount >= 1)
        // The driver recovers with a restart.
        try bench.driver.open()
        bench.acknowledge()
        let outgoing = makeFrame(to: peerAddress)
        try bench.driver.transmit(outgoing)
        #expect(bench.sentFrames() == [outgoing])
    }

    @Test(arguments: pcnetModels, [UInt32(0xFFFF_FFF8), 0xFFFF_0000, 0x0100_0000])
    func descriptorRingOutsideRAM(model: CardModel, base: UInt32) throws {
        let bench = try PCNetBench.running(model)
        bench.placeTransmitRing(at: base, lengthRegister: 0xFFF0)
        bench.transmitDemand()
        #expect(bench.reportedMemoryError())
        let receiving = try PCNetBench.running(model)
        receiving.placeReceiveRing(at: base, lengthRegister: 0xFFF0)
        receiving.harness.receive(makeFrame(to: receiving.mac))
        #expect(receiving.reportedMemoryError())
    }

    @Test(arguments: pcnetModels)
    func receiveBufferOutsideRAM(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        try bench.receiveRing.put(0, buffer: 0xFFFF_FFE0, length: 1544, status: StatusBits.own)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.reportedMemoryError())
        #expect(bench.counter("rx_frames") == 0)
        // RXON is off: the next frame is not received at all.
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.counter("rx_dropped_stopped") == 1)
    }

    @Test(arguments: pcnetModels)
    func initBlockOutsideRAM(model: CardModel) throws {
        let bench = try PCNetBench(model)
        bench.driver.reset()
        bench.setBCR(20, 2)
        bench.setCSR(1, 0xFFF0)
        bench.setCSR(2, 0xFFFF)
        bench.setCSR(0, CSR0Bits.initialize)
        let value = bench.csr(0)
        #expect(value & CSR0Bits.merr != 0)
        #expect(value & CSR0Bits.idon == 0)
    }

    /// A descriptor ring or a buffer inside the card's own BAR1 window: the DMA never leaves the card (it is refused
    /// before guest RAM is touched) and the chip reports MERR.
    @Test(arguments: pcnetModels)
    func dmaIntoTheCardsOwnBAR(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let window: UInt32 = 0x30_0000
        bench.harness.configWrite(0x14, width: 4, value: window)
        // What a DMA that went to RAM instead would find there: an owned descriptor with a frame.
        try bench.ram.store(makeFrame(to: peerAddress), at: 0x31_0000)
        try bench.ram.store(
            descriptorBlock(count: 1, length: 64, status: { _ in 0x8300 }, buffer: { _ in 0x31_0000 }),
            at: UInt64(window))
        bench.placeTransmitRing(at: window, lengthRegister: 0xFFFF)
        bench.transmitDemand()
        #expect(bench.reportedMemoryError())
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.ram.faultCount == 0)
        #expect(bench.counter("dma_faults") == 1)

        let receiving = try PCNetBench.running(model)
        receiving.harness.configWrite(0x14, width: 4, value: window)
        try receiving.receiveRing.put(0, buffer: window + 0x10, length: 1544, status: StatusBits.own)
        receiving.harness.receive(makeFrame(to: receiving.mac))
        #expect(receiving.reportedMemoryError())
        #expect(receiving.ram.faultCount == 0)
        #expect(try receiving.ram.load(at: UInt64(window), count: 64) == [UInt8](repeating: 0, count: 64))
    }

    /// Bus mastering switched off under a running chip: the next DMA is refused before it reaches RAM.
    @Test(arguments: pcnetModels)
    func busMasteringTurnedOffWhileRunning(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.harness.configWrite(0x04, width: 2, value: 0x0003)
        let before = bench.ram.accessCount
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.ram.accessCount == before)
        #expect(bench.reportedMemoryError())
        #expect(bench.counter("dma_faults") == 1)
    }

    /// DXMTFCS with a buffer no longer than its FCS (or than a header plus FCS): a runt, never a negative length.
    @Test(arguments: pcnetModels, [1, 3, 4, 17])
    func guestFCSLongerThanTheFrame(model: CardModel, length: Int) throws {
        let bench = try PCNetBench.running(model, mode: 0x004C)  // LOOP | INTL | DXMTFCS
        try bench.queueTransmit([UInt8](repeating: 0xFF, count: length), index: 0)
        bench.transmitDemand()
        #expect(bench.counter("tx_dropped_runt") == 1)
        #expect(bench.counter("loopback_frames") == 0)
        #expect(try !bench.transmitRing.isOwned(0))
    }

    // MARK: INIT and bus mastering

    /// VirtualBox's quirk for drivers that toggle bus mastering around INIT: INIT alone with bus mastering off waits,
    /// and happens at the next CSR0 read once bus mastering is back.
    @Test(arguments: pcnetModels)
    func initIsDeferredWhileBusMasteringIsOff(model: CardModel) throws {
        let bench = try PCNetBench(model)
        _ = try bench.driver.probe()  // leaves an init block and its address programmed
        bench.harness.configWrite(0x04, width: 2, value: 0x0003)
        let before = bench.ram.accessCount
        bench.setCSR(0, CSR0Bits.initialize | CSR0Bits.iena)
        #expect(bench.ram.accessCount == before)
        #expect(!bench.interrupt)
        bench.harness.configWrite(0x04, width: 2, value: 0x0007)
        let value = bench.csr(0)
        #expect(value & (CSR0Bits.idon | CSR0Bits.initialize | CSR0Bits.merr) == CSR0Bits.idon | CSR0Bits.initialize)
        #expect(bench.interrupt)
        #expect(bench.csr(76) == UInt16(truncatingIfNeeded: -32))
    }

    @Test(arguments: pcnetModels)
    func initWithStartAndBusMasteringOffIsAMemoryError(model: CardModel) throws {
        let bench = try PCNetBench(model)
        _ = try bench.driver.probe()
        bench.harness.configWrite(0x04, width: 2, value: 0x0003)
        bench.setCSR(0, CSR0Bits.initialize | CSR0Bits.strt)
        let value = bench.csr(0)
        #expect(value & CSR0Bits.merr != 0)
        #expect(value & CSR0Bits.idon == 0)
    }

    @Test(arguments: pcnetModels)
    func deferredInitStillWithoutBusMasteringIsAMemoryError(model: CardModel) throws {
        let bench = try PCNetBench(model)
        _ = try bench.driver.probe()
        bench.harness.configWrite(0x04, width: 2, value: 0x0003)
        bench.setCSR(0, CSR0Bits.initialize)
        let value = bench.csr(0)
        #expect(value & CSR0Bits.merr != 0)
        #expect(value & CSR0Bits.idon == 0)
    }

    // MARK: Timers and suspend

    @Test(arguments: pcnetModels)
    func pollTimerSendsWithoutTDMD(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let first = makeFrame(to: peerAddress, seed: 1)
        try bench.queueTransmit(first, index: 0)
        bench.harness.advance(nanoseconds: 1_000_000)
        #expect(bench.sentFrames().isEmpty)
        bench.harness.advance(nanoseconds: 1_000_000)  // 65536 clocks at 33 MHz: about 1.986 ms
        #expect(bench.sentFrames() == [first])
        let second = makeFrame(to: peerAddress, seed: 2)
        try bench.queueTransmit(second, index: 1)
        bench.harness.advance(nanoseconds: 2_000_000)
        #expect(bench.sentFrames() == [second])
    }

    @Test(arguments: pcnetModels)
    func disabledPollingWaitsForTDMD(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(4, bench.csr(4) | 0x1000)  // DPOLL
        let outgoing = makeFrame(to: peerAddress)
        try bench.queueTransmit(outgoing, index: 0)
        bench.harness.advance(nanoseconds: 50_000_000)
        #expect(bench.sentFrames().isEmpty)
        bench.transmitDemand()
        #expect(bench.sentFrames() == [outgoing])
    }

    @Test(arguments: pcnetModels)
    func pollIntervalFromCSR47(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.stop()
        bench.setCSR(47, UInt16(truncatingIfNeeded: -3300))  // about 100 µs
        bench.start()
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 0)
        bench.harness.advance(nanoseconds: 90_000)
        #expect(bench.sentFrames().isEmpty)
        bench.harness.advance(nanoseconds: 20_000)
        #expect(bench.sentFrames().count == 1)
    }

    /// Linux's set_multicast_list: suspend, rewrite LADRF (and CSR15), resume. Outside suspend or stop those registers
    /// do not take writes.
    @Test(arguments: pcnetModels)
    func suspendLetsTheDriverRewriteTheFilters(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let bit = multicastHashBit(multicastAddress)
        let word = 8 + bit / 16
        bench.setCSR(word, 1 << (bit % 16))
        bench.setCSR(15, 0x8000)
        #expect(bench.csr(word) == 0)
        #expect(bench.csr(15) == 0)
        bench.harness.receive(makeFrame(to: multicastAddress))
        #expect(bench.counter("rx_filtered") == 1)

        bench.suspended {
            #expect(bench.csr(5) & 0x0001 != 0)
            bench.setCSR(word, 1 << (bit % 16))
            #expect(bench.csr(word) == 1 << (bit % 16))
        }
        bench.harness.receive(makeFrame(to: multicastAddress))
        #expect(try bench.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.lafm)

        bench.suspended { bench.setCSR(15, 0x8000) }
        #expect(bench.csr(15) == 0x8000)
        #expect(bench.card.port.isPromiscuous)
        bench.harness.receive(makeFrame(to: MACAddress("02:00:00:00:00:99")!))
        #expect(try bench.receiveRing.status(1) == StatusBits.stp | StatusBits.enp)
    }

    /// While suspended nothing is transmitted; a TDMD given meanwhile is served on resume, even without polling.
    @Test(arguments: pcnetModels)
    func transmitDemandWaitsOutASuspend(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(4, bench.csr(4) | 0x1000)  // DPOLL
        let outgoing = makeFrame(to: peerAddress)
        bench.setCSR(5, 0x0001)
        try bench.queueTransmit(outgoing, index: 0)
        bench.transmitDemand()
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitRing.isOwned(0))
        bench.setCSR(5, 0)
        #expect(bench.sentFrames() == [outgoing])
    }

    // MARK: Access widths

    /// Accesses of a width the port does not decode read all-ones and change nothing.
    @Test(arguments: pcnetModels)
    func illegalAccessWidths(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let harness = bench.harness
        bench.setCSR(3, 0x5F00)
        harness.write(bar: 0, offset: 0x12, width: 2, value: 3)
        // WIO: bytes and double words at the register ports.
        #expect(harness.read(bar: 0, offset: 0x10, width: 1) == 0xFF)
        #expect(harness.read(bar: 0, offset: 0x12, width: 4) == 0xFFFF_FFFF)
        #expect(harness.read(bar: 0, offset: 0x14, width: 4) == 0xFFFF_FFFF)  // not a reset
        #expect(harness.read(bar: 0, offset: 0x18, width: 4) == 0xFFFF_FFFF)  // the DWIO reset port is not decoded
        #expect(harness.read(bar: 0, offset: 0x16, width: 1) == 0xFF)
        for width in [0, 3, 5, 8, 16] {
            #expect(harness.read(bar: 0, offset: 0x10, width: width) == PCIFunction.allOnes(width: width))
            #expect(harness.read(bar: 0, offset: 0x00, width: width) == PCIFunction.allOnes(width: width))
            harness.write(bar: 0, offset: 0x10, width: width, value: 0)
        }
        harness.write(bar: 0, offset: 0x12, width: 1, value: 0)
        harness.write(bar: 0, offset: 0x10, width: 1, value: 0)
        harness.write(bar: 0, offset: 0x13, width: 1, value: 0)
        #expect(bench.driver.readRAP() == 3)
        #expect(bench.csr(3) == 0x5F00)
        #expect(bench.csr(0) & (CSR0Bits.strt | CSR0Bits.txon | CSR0Bits.rxon) != 0)
        // Past the 32-byte window, through either BAR.
        #expect(harness.read(bar: 0, offset: 0x20, width: 2) == 0xFFFF)
        #expect(harness.read(bar: 1, offset: 0x1E, width: 4) == 0xFFFF_FFFF)
        #expect(harness.read(bar: 2, offset: 0, width: 4) == 0xFFFF_FFFF)
        // Still word I/O, and nothing was reset.
        #expect(bench.bcr(18) & 0x0080 == 0)
        #expect(bench.csr(3) == 0x5F00)

        // DWIO: words at the register ports read all-ones and a word write does nothing.
        bench.driver.switchToDoubleWordIO()
        bench.setCSR(3, 0x1F00)
        harness.write(bar: 0, offset: 0x14, width: 4, value: 3)
        #expect(harness.read(bar: 0, offset: 0x18, width: 2) == 0xFFFF)
        #expect(harness.read(bar: 0, offset: 0x14, width: 2) == 0xFFFF)
        harness.write(bar: 0, offset: 0x10, width: 2, value: 0)
        harness.write(bar: 0, offset: 0x12, width: 2, value: 0)
        #expect(bench.csr(3) == 0x1F00)
        #expect(bench.csr(0) & CSR0Bits.strt != 0)
    }

    /// Every register index through RAP and RDP/BDP, read and written with hostile values, in both I/O modes: no trap,
    /// and the chip still identifies itself afterwards.
    @Test(arguments: pcnetModels)
    func everyRegisterIndexIsSafe(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let harness = bench.harness
        for index in 0..<128 where index != 0 {
            for value: UInt64 in [0xFFFF, 0x0000, 0x8001] {
                harness.write(bar: 0, offset: 0x12, width: 2, value: UInt64(index))
                harness.write(bar: 0, offset: 0x10, width: 2, value: value)
                _ = harness.read(bar: 0, offset: 0x10, width: 2)
                harness.write(bar: 0, offset: 0x16, width: 2, value: value)
                _ = harness.read(bar: 0, offset: 0x16, width: 2)
            }
        }
        harness.receive(makeFrame(to: bench.mac))
        _ = try? bench.driver.transmit(makeFrame(to: peerAddress))
        bench.harness.advance(nanoseconds: 10_000_000)
        bench.driver.reset()
        #expect(bench.csr(88) & 0xFFF == 3)
    }
}
