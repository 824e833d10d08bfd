import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

extension PCNetBench {
    /// Stops the chip, points the transmit ring at `base` with `length` entries (CSR30/31, CSR78) and the current
    /// descriptor at `index`, and starts it again without INIT.
    func placeTransmitRing(at base: UInt32, lengthRegister: UInt16, index: Int = 0) {
        stop()
        setCSR(30, UInt16(truncatingIfNeeded: base))
        setCSR(31, UInt16(truncatingIfNeeded: base >> 16))
        setCSR(78, lengthRegister)
        let length = lengthRegister == 0 ? 512 : 0x10000 - Int(lengthRegister)
        setCSR(74, ringCounter(index, length))
        start()
    }

    /// The same for the receive ring (CSR24/25, CSR76, CSR72).
    func placeReceiveRing(at base: UInt32, lengthRegister: UInt16, index: Int = 0) {
        stop()
        setCSR(24, UInt16(truncatingIfNeeded: base))
        setCSR(25, UInt16(truncatingIfNeeded: base >> 16))
        setCSR(76, lengthRegister)
        let length = lengthRegister == 0 ? 512 : 0x10000 - Int(lengthRegister)
        setCSR(72, ringCounter(index, length))
        start()
    }

    /// Whether the last DMA fault left MERR, TXON and RXON off, and the PCI master-abort status set.
    func reportedMemoryError() -> Bool {
        let value = csr(0)
        let status = card.configRead(offset: 0x06, width: 2)
        return value & CSR0Bits.merr != 0 && value & (CSR0Bits.txon | CSR0Bits.rxon) == 0 && status & 0x2000 != 0
    }
}

/// Builds `count` style-2 descriptors in one block of bytes (status word `status`, byte count `length`, buffer
/// `buffer(index)`).
func descriptorBlock(count: Int, length: Int, status: (Int) -> UInt16, buffer: (Int) -> UInt32) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count * 16)
    let byteCount = DescriptorRing.byteCount(length)
    for index in 0..<count {
        let at = index * 16
        let address = buffer(index)
        let word = status(index)
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: address >> (8 * UInt32(i))) }
        bytes[at + 4] = UInt8(truncatingIfNeeded: byteCount)
        bytes[at + 5] = UInt8(truncatingIfNeeded: byteCount >> 8)
        bytes[at + 6] = UInt8(truncatingIfNeeded: word)
        bytes[at + 7] = UInt8(truncatingIfNeeded: word >> 8)
    }
    return bytes
}

@Suite("PCnet against a hostile guest", .timeLimit(.minutes(1)))
struct PCNetHostileInputTests {
    // MARK: devices.md §3, PCnet items 1-5

    /// CVE-2015-3209: an STP...ENP chain whose buffers sum past 4096 bytes. The copy stays bounded; the frame is
    /// dropped as babble.
    @Test(arguments: pcnetModels)
    func cve_2015_3209_chainPast4096Bytes(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let pieces = (0..<4).map { [UInt8](repeating: UInt8($0), count: 2000) }
        try bench.driver.transmitChained(pieces)
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_oversize") == 1)
        #expect(bench.csr(0) & CSR0Bits.babl != 0)
        for index in 0..<4 { #expect(try !bench.transmitRing.isOwned(index)) }
        // The transmitter carries on with the next frame.
        let next = makeFrame(to: peerAddress)
        try bench.driver.transmit(next)
        #expect(bench.sentFrames() == [next])
    }

    /// CVE-2015-7504: a 4096-byte frame in internal loopback, where appending the FCS once overflowed the buffer.
    @Test(arguments: pcnetModels, [UInt16(0x0044), 0x004C])
    func cve_2015_7504_loopback4096ByteFrame(model: CardModel, mode: UInt16) throws {
        let bench = try PCNetBench.running(model, mode: mode)
        var big = makeFrame(to: bench.mac, length: 4096)
        big[4095] = 0xA5
        try bench.ram.store(big, at: 0x40_0000)
        try bench.transmitRing.put(0, buffer: 0x40_0000, length: 4096, status: 0x8300)  // BCNT field 0: 4096 bytes
        bench.transmitDemand()
        #expect(bench.counter("tx_dropped_oversize") == 1)
        #expect(bench.counter("loopback_frames") == 0)
        #expect(try bench.receiveRing.isOwned(0))
        #expect(bench.csr(0) & CSR0Bits.babl != 0)
    }

    /// CVE-2015-7512 and CVE-2018-17962: frames from the backend far larger than any receive buffer.
    @Test(arguments: pcnetModels)
    func cve_2015_7512_and_2018_17962_hugeBackendFrames(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.ram.logging = true
        for length in [1519, 4092, 4093, 4100, 65_536, 1 << 20] {
            bench.harness.receive(makeFrame(to: bench.mac, length: length))
        }
        #expect(bench.counter("rx_dropped_oversize") == 6)
        #expect(bench.ram.log.isEmpty)
        #expect(try bench.receiveRing.isOwned(0))
        #expect(!bench.interrupt)
    }

    /// CVE-2016-7909: CSR76 or CSR78 = 0 once made a ring walk endless. Zero means 512, and the walk stops after
    /// one ring.
    @Test(arguments: pcnetModels)
    func cve_2016_7909_ringLengthZero(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.stop()
        bench.setCSR(76, 0)
        bench.setCSR(78, 0)
        #expect(bench.csr(76) == 0 && bench.csr(78) == 0)
        #expect(bench.csr(72) == ringCounter(0, 512))
        #expect(bench.csr(74) == ringCounter(0, 512))
        bench.start()

        // 513 owned single-descriptor frames: exactly the first 512 go out, then the ring wraps to an empty slot.
        let frames = (0..<513).map { makeFrame(to: peerAddress, length: 60, seed: UInt8(truncatingIfNeeded: $0)) }
        for (index, frame) in frames.enumerated() { try bench.ram.store(frame, at: 0x40_0000 + UInt64(index) * 64) }
        try bench.ram.store(
            descriptorBlock(count: 513, length: 60, status: { _ in 0x8300 }, buffer: { 0x40_0000 + UInt32($0) * 64 }),
            at: Layout.transmitRing)
        bench.transmitDemand()
        // The ring's first slot was sent already; it is not owned, so the pass ends after one lap.
        #expect(bench.sentFrames() == Array(frames[0..<512]))
        #expect(try bench.transmitRing.isOwned(512))
        #expect(bench.csr(74) == ringCounter(0, 512))

        // Receive: the ring is 512 long too, so the next frame lands in descriptor 0 again after 512.
        bench.stop()
        bench.setCSR(72, ringCounter(511, 512))
        bench.start()
        try bench.ram.store(
            descriptorBlock(count: 1, length: 1544, status: { _ in 0x8000 }, buffer: { _ in 0x50_0000 }),
            at: Layout.receiveRing + 511 * 16)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(try bench.ram.load(at: 0x50_0000, count: 64) == makeFrame(to: bench.mac))
        #expect(bench.csr(72) == ringCounter(0, 512))
    }

    /// CVE-2021-3416: a looped-back frame whose receive DMA rewrites the transmit ring with fresh owned descriptors.
    /// The transmitter is not re-entered: the pass that sent the frame ends, and each later pass is one ring at most.
    @Test(arguments: pcnetModels)
    func cve_2021_3416_loopbackRewritesTheTransmitRing(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x8044)  // PROM | LOOP | INTL
        // The frame is a transmit ring image: slot 0 handed back, slots 1-15 owned STP|ENP frames pointing at itself.
        var image = descriptorBlock(
            count: 16, length: 256, status: { $0 == 0 ? 0 : 0x8300 }, buffer: { _ in UInt32(bench.transmitBuffer(0)) })
        image.replaceSubrange(0..<6, with: bench.mac.bytes)
        // The first receive descriptor's buffer is the transmit ring.
        try bench.receiveRing.put(0, buffer: UInt32(Layout.transmitRing), length: 1544, status: StatusBits.own)
        try bench.queueTransmit(image, index: 0)
        bench.transmitDemand()
        #expect(bench.counter("tx_frames") == 1)
        #expect(bench.counter("loopback_frames") == 1)
        #expect(try bench.transmitRing.isOwned(1))  // the rewrite happened, and was not acted on
        #expect(bench.csr(74) == ringCounter(1, 16))

        // The next doorbell walks what the guest's DMA left there: bounded by the ring, the loopback queue by 16.
        let before = bench.ram.accessCount
        bench.transmitDemand()
        #expect(bench.counter("tx_frames")! <= 16)
        #expect(bench.counter("loopback_frames")! <= 17)
        #expect(bench.ram.accessCount - before < 16 * 16)
    }

    // MARK: Ring walks

    /// A chain that never ends: every descriptor owned, STP on the first, no ENP. One ring is walked; the last
    /// descriptor reports BUFF, UFLO and ERR; the transmitter turns off.
    @Test(arguments: pcnetModels, [false, true])
    func transmitChainWithoutEnd(model: CardModel, disableStopOnUnderflow: Bool) throws {
        let bench = try PCNetBench.running(model)
        if disableStopOnUnderflow { bench.setCSR(3, 0x0040) }  // DXSUFLO
        try bench.ram.store(
            descriptorBlock(count: 16, length: 100, status: { $0 == 0 ? 0x8200 : 0x8000 }, buffer: { _ in 0x40_0000 }),
            at: Layout.transmitRing)
        let before = bench.ram.accessCount
        bench.transmitDemand()
        #expect(bench.ram.accessCount - before <= 16 * 6)
        #expect(bench.sentFrames().isEmpty)
        for index in 0..<16 { #expect(try !bench.transmitRing.isOwned(index)) }
        #expect(try bench.transmitRing.transmitErrors(15) == TransmitErrorBits.buff | TransmitErrorBits.uflo)
        #expect(try bench.transmitRing.status(15) & StatusBits.err != 0)
        #expect(try bench.transmitRing.transmitErrors(0) == 0)
        #expect(bench.counter("tx_underflows") == 1)
        let csr0 = bench.csr(0)
        #expect(csr0 & CSR0Bits.tint != 0)
        #expect((csr0 & CSR0Bits.txon != 0) == disableStopOnUnderflow)
    }

    /// A chain broken by a descriptor the chip does not own is an underflow in the last descriptor it had.
    @Test(arguments: pcnetModels)
    func transmitChainBrokenByAnUnownedDescriptor(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 0, status: 0x8200)
        bench.transmitDemand()
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitRing.transmitErrors(0) == TransmitErrorBits.buff | TransmitErrorBits.uflo)
        #expect(bench.csr(0) & CSR0Bits.txon == 0)
        // The transmitter stays off until the driver restarts the chip.
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 1)
        bench.transmitDemand()
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitRing.isOwned(1))
    }

    /// A chain abandoned by a new STP: the old chain underflows, and unless DXSUFLO the transmitter is off, so the
    /// new frame waits (still owned) instead of going out with TXON clear.
    @Test(arguments: pcnetModels, [false, true])
    func transmitChainAbandonedByANewFrame(model: CardModel, disableStopOnUnderflow: Bool) throws {
        let bench = try PCNetBench.running(model)
        if disableStopOnUnderflow { bench.setCSR(3, 0x0040) }
        let next = makeFrame(to: peerAddress, seed: 7)
        try bench.queueTransmit(makeFrame(to: peerAddress), index: 0, status: 0x8200)
        try bench.queueTransmit(next, index: 1)
        bench.transmitDemand()
        #expect(try bench.transmitRing.transmitErrors(0) == TransmitErrorBits.buff | TransmitErrorBits.uflo)
        #expect(bench.counter("tx_underflows") == 1)
        if disableStopOnUnderflow {
            #expect(bench.sentFrames() == [next])
            #expect(bench.csr(0) & CSR0Bits.txon != 0)
        } else {
            #expect(bench.sentFrames().isEmpty)
            #expect(try bench.transmitRing.isOwned(1))
            #expect(bench.csr(0) & CSR0Bits.txon == 0)
            #expect(bench.csr(74) == ringCounter(1, 16))
        }
    }

    /// Ring lengths from CSR76/78 as two's complement, 1 to 65535: the descriptor after the last is the first.
    @Test(arguments: pcnetModels, [UInt16(0xFFFF), 0xFFF0, 0xFE00, 0xF000, 0x8000, 0x0001])
    func ringLengthRegister(model: CardModel, lengthRegister: UInt16) throws {
        let bench = try PCNetBench.running(model, ramSize: 32 << 20)
        let length = 0x10000 - Int(lengthRegister)
        let base: UInt32 = 0x40_0000
        bench.placeTransmitRing(at: base, lengthRegister: lengthRegister, index: length - 1)
        #expect(bench.csr(74) == 0)
        let outgoing = makeFrame(to: peerAddress, seed: 3)
        try bench.ram.store(outgoing, at: 0x30_0000)
        try bench.ram.store(
            descriptorBlock(count: 1, length: outgoing.count, status: { _ in 0x8300 }, buffer: { _ in 0x30_0000 }),
            at: UInt64(base) + UInt64(length - 1) * 16)
        bench.transmitDemand()
        #expect(bench.sentFrames() == [outgoing])
        #expect(bench.csr(74) == ringCounter(0, length))
    }

    /// CSR78 = 1: a 65535-entry ring full of owned descriptors that belong to no frame. One doorbell walks it once,
    /// hands every descriptor back, and returns.
    @Test(arguments: pcnetModels)
    func longestRingWalkIsBounded(model: CardModel) throws {
        let bench = try PCNetBench.running(model, ramSize: 32 << 20)
        let count = 65_535
        let base: UInt32 = 0x40_0000
        try bench.ram.store(
            descriptorBlock(count: count, length: 64, status: { _ in 0x8000 }, buffer: { _ in 0x30_0000 }),
            at: UInt64(base))
        bench.placeTransmitRing(at: base, lengthRegister: 0x0001)
        let before = bench.ram.accessCount
        bench.transmitDemand()
        #expect(bench.ram.accessCount - before <= UInt64(count) * 4 + 16)
        #expect(bench.counter("tx_chain_errors") == UInt64(count))
        #expect(bench.sentFrames().isEmpty)
        let ring = DescriptorRing(ram: bench.ram, base: UInt64(base), style: 2)
        #expect(try !ring.isOwned(0))
        #expect(try !ring.isOwned(count - 1))
        #expect(bench.csr(74) == ringCounter(0, count))
    }

    /// Receive descriptors of one byte each (BCNT field 0xFFF) chaining a 1514-byte frame plus its FCS over 1518
    /// descriptors.
    @Test(arguments: pcnetModels)
    func oneByteReceiveBuffers(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        let base: UInt32 = 0x40_0000
        let data: UInt32 = 0x50_0000
        try bench.ram.store(
            descriptorBlock(count: 2048, length: 1, status: { _ in 0x8000 }, buffer: { data + UInt32($0) }),
            at: UInt64(base))
        #expect(try bench.ram.loadLittleEndian(UInt16.self, at: UInt64(base) + 4) == 0xFFFF)
        bench.placeReceiveRing(at: base, lengthRegister: UInt16(truncatingIfNeeded: -2048))
        let incoming = makeFrame(to: bench.mac, length: 1514)
        bench.harness.receive(incoming)
        let ring = DescriptorRing(ram: bench.ram, base: UInt64(base), style: 2)
        #expect(try ring.status(0) == StatusBits.stp)
        #expect(try ring.status(1) == 0)
        #expect(try ring.status(1517) == StatusBits.enp | StatusBits.pam)
        #expect(try ring.messageLength(1517) == 1518)
        #expect(try ring.isOwned(1518))
        #expect(try bench.ram.load(at: UInt64(data), count: 1518) == incoming + frameCheckSequence(incoming))
        #expect(bench.csr(72) == ringCounter(1518, 2048))

        // In a 512-entry ring the same frame runs out of descriptors after one lap.
        try bench.ram.store(
            descriptorBlock(count: 512, length: 1, status: { _ in 0x8000 }, buffer: { data + UInt32($0) }),
            at: UInt64(base))
        bench.placeReceiveRing(at: base, lengthRegister: UInt16(truncatingIfNeeded: -512))
        bench.harness.receive(incoming)
        #expect(try ring.status(511) & (StatusBits.buff | StatusBits.err) == StatusBits.buff | StatusBits.err)
        #expect(bench.counter("rx_buffer_errors") == 1)
    }
}
