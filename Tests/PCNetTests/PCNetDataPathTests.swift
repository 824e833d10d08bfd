import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

/// CSR72/74 for descriptor `index` of a ring of `length`: two's complement, zero at the last descriptor.
func ringCounter(_ index: Int, _ length: Int) -> UInt16 { UInt16(truncatingIfNeeded: index + 1 - length) }

@Suite("PCnet rings, chaining, frame sizes, loopback and address filtering")
struct PCNetDataPathTests {
    // MARK: Ring wrap

    @Test(arguments: pcnetModels, [0, 2, 3])
    func receiveRingWraps(model: CardModel, style: Int) throws {
        let bench = try PCNetBench.running(model, style: style, receiveRingLog2: 2)
        #expect(bench.csr(72) == ringCounter(0, 4))
        var frames: [[UInt8]] = []
        for i in 0..<10 {
            let incoming = makeFrame(to: bench.mac, length: 60 + 7 * i, seed: UInt8(i))
            frames.append(incoming)
            bench.harness.receive(incoming)
            #expect(bench.csr(72) == ringCounter((i + 1) % 4, 4))
            try bench.driver.handleInterrupt()
        }
        #expect(bench.driver.received == frames)
        #expect(bench.driver.receiveErrors == 0)
        #expect(bench.counter("rx_frames") == 10)
    }

    @Test(arguments: pcnetModels)
    func receiveRingFullMissesTheRest(model: CardModel) throws {
        let bench = try PCNetBench.running(model, receiveRingLog2: 2)
        for i in 0..<6 { bench.harness.receive(makeFrame(to: bench.mac, seed: UInt8(i))) }
        #expect(bench.counter("rx_frames") == 4)
        #expect(bench.counter("rx_missed") == 2)
        #expect(bench.csr(112) == 2)
        #expect(bench.csr(0) & (CSR0Bits.rint | CSR0Bits.miss) == CSR0Bits.rint | CSR0Bits.miss)
        // The first four frames, in ring order.
        for i in 0..<4 {
            #expect(
                try bench.ram.load(at: bench.receiveBuffer(i), count: 64) == makeFrame(to: bench.mac, seed: UInt8(i)))
        }
    }

    @Test(arguments: pcnetModels, [0, 2, 3])
    func transmitRingWraps(model: CardModel, style: Int) throws {
        let bench = try PCNetBench.running(model, style: style, transmitRingLog2: 2)
        #expect(bench.csr(74) == ringCounter(0, 4))
        var frames: [[UInt8]] = []
        for i in 0..<10 {
            let outgoing = makeFrame(to: peerAddress, length: 60 + 5 * i, seed: UInt8(i))
            frames.append(outgoing)
            #expect(try bench.driver.transmit(outgoing))
            #expect(bench.csr(74) == ringCounter((i + 1) % 4, 4))
            try bench.driver.handleInterrupt()
        }
        #expect(bench.sentFrames() == frames)
        #expect(bench.driver.transmitErrors == 0)
        #expect(bench.counter("tx_frames") == 10)
    }

    @Test(arguments: pcnetModels)
    func ringCountersMoveOnlyWhileStopped(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.setCSR(72, 0)
        bench.setCSR(76, 0)
        #expect(bench.csr(72) == ringCounter(0, 32))
        #expect(bench.csr(76) == UInt16(truncatingIfNeeded: -32))
        bench.stop()
        bench.setCSR(72, 0)  // the last descriptor
        #expect(bench.csr(72) == 0)
        bench.start()
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(try bench.receiveRing.status(31) == StatusBits.stp | StatusBits.enp | StatusBits.pam)
        #expect(try bench.receiveRing.isOwned(0))
        #expect(bench.csr(72) == ringCounter(0, 32))
    }

    // MARK: Chaining

    @Test(arguments: pcnetModels, [0, 2, 3])
    func chainedTransmit(model: CardModel, style: Int) throws {
        let bench = try PCNetBench.running(model, style: style)
        let whole = makeFrame(to: peerAddress, length: 300, seed: 5)
        let pieces = [Array(whole[0..<14]), Array(whole[14..<100]), Array(whole[100..<101]), Array(whole[101...])]
        try bench.driver.transmitChained(pieces)
        #expect(bench.sentFrames() == [whole])
        for index in 0..<4 {
            let status = try bench.transmitRing.status(index)
            #expect(status & (StatusBits.own | StatusBits.err) == 0)
            #expect(try bench.transmitRing.transmitErrors(index) == 0)
        }
        #expect(bench.counter("tx_frames") == 1)
        #expect(bench.csr(74) == ringCounter(4, 16))
    }

    @Test(arguments: pcnetModels, [0, 2, 3])
    func chainedReceive(model: CardModel, style: Int) throws {
        let bench = try PCNetBench.running(model, style: style)
        for index in 0..<8 {
            try bench.receiveRing.put(
                index, buffer: UInt32(bench.receiveBuffer(index)), length: 256, status: StatusBits.own)
        }
        let incoming = makeFrame(to: bench.mac, length: 1000, seed: 3)
        bench.harness.receive(incoming)
        let ring = bench.receiveRing
        let pam: UInt16 = style == 0 ? 0 : StatusBits.pam
        #expect(try ring.status(0) == StatusBits.stp)
        #expect(try ring.status(1) == 0)
        #expect(try ring.status(2) == 0)
        #expect(try ring.status(3) == StatusBits.enp | pam)
        #expect(try ring.messageLength(3) == 1004)
        #expect(try ring.isOwned(4))
        var assembled: [UInt8] = []
        for index in 0..<4 {
            assembled += try bench.ram.load(at: bench.receiveBuffer(index), count: index < 3 ? 256 : 1004 - 768)
        }
        #expect(assembled == incoming + frameCheckSequence(incoming))
        #expect(bench.csr(72) == ringCounter(4, 32))
        #expect(bench.counter("rx_frames") == 1)
    }

    @Test(arguments: pcnetModels)
    func receiveRunsOutOfBuffersMidFrame(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        for index in 0..<32 {
            try bench.receiveRing.put(
                index, buffer: UInt32(bench.receiveBuffer(index)), length: 256, status: index < 2 ? StatusBits.own : 0)
        }
        bench.harness.receive(makeFrame(to: bench.mac, length: 1000))
        #expect(try bench.receiveRing.status(0) == StatusBits.stp)
        let last = try bench.receiveRing.status(1)
        let overflow = StatusBits.buff | StatusBits.oflo | StatusBits.err
        #expect(last & overflow == overflow)
        #expect(last & (StatusBits.own | StatusBits.enp) == 0)
        #expect(bench.counter("rx_buffer_errors") == 1)
        #expect(bench.counter("rx_frames") == 0)
    }

    // MARK: Frame sizes

    @Test(arguments: pcnetModels)
    func oversizeTransmitIsDroppedWithBabble(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        try bench.driver.transmit(makeFrame(to: peerAddress, length: 1519))
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_oversize") == 1)
        #expect(bench.csr(0) & (CSR0Bits.babl | CSR0Bits.err) == CSR0Bits.babl | CSR0Bits.err)
        #expect(try !bench.transmitRing.isOwned(0))
        bench.acknowledge()
        let largest = makeFrame(to: peerAddress, length: 1518)
        try bench.driver.transmit(largest)
        #expect(bench.sentFrames() == [largest])
        #expect(bench.csr(0) & CSR0Bits.babl == 0)
    }

    @Test(arguments: pcnetModels)
    func oversizeReceiveIsDroppedWithoutDMA(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        try bench.ram.fill(0xEE, count: 2048, at: bench.receiveBuffer(0))
        bench.ram.logging = true
        bench.harness.receive(makeFrame(to: bench.mac, length: 1519))
        #expect(bench.ram.log.isEmpty)
        #expect(bench.counter("rx_dropped_oversize") == 1)
        #expect(try bench.receiveRing.isOwned(0))
        #expect(try bench.ram.load(at: bench.receiveBuffer(0), count: 2048) == [UInt8](repeating: 0xEE, count: 2048))
        #expect(!bench.interrupt)
        let largest = makeFrame(to: bench.mac, length: 1518)
        bench.harness.receive(largest)
        #expect(try bench.receiveRing.messageLength(0) == 1522)
        #expect(try bench.ram.load(at: bench.receiveBuffer(0), count: 1518) == largest)
    }

    @Test(arguments: pcnetModels)
    func runts(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        // Shorter than a header: dropped both ways.
        try bench.driver.transmit(Array(makeFrame(to: peerAddress)[0..<13]))
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_runt") == 1)
        bench.harness.receive(Array(makeFrame(to: bench.mac)[0..<13]))
        #expect(bench.counter("rx_dropped_runt") == 1)
        #expect(try bench.receiveRing.isOwned(0))

        // Short frames: APAD_XMT (set by Linux) pads transmit to 60 bytes; receive pads to 60 before the FCS.
        let short = makeFrame(to: peerAddress, length: 20)
        try bench.driver.transmit(short)
        #expect(bench.sentFrames() == [short + [UInt8](repeating: 0, count: 40)])
        bench.setCSR(4, bench.csr(4) & ~0x0800)
        try bench.driver.transmit(short)
        #expect(bench.sentFrames() == [short])

        let incoming = makeFrame(to: bench.mac, length: 20)
        bench.harness.receive(incoming)
        let padded = incoming + [UInt8](repeating: 0, count: 40)
        #expect(try bench.receiveRing.messageLength(0) == 64)
        #expect(try bench.ram.load(at: bench.receiveBuffer(0), count: 64) == padded + frameCheckSequence(padded))
    }

    @Test(arguments: pcnetModels)
    func missedFramesCountInCSR112(model: CardModel) throws {
        let bench = try PCNetBench.running(model, receiveOwned: 0)
        for _ in 0..<3 { bench.harness.receive(makeFrame(to: bench.mac)) }
        #expect(bench.csr(112) == 3)
        #expect(bench.counter("rx_missed") == 3)
        #expect(bench.counter("missed_frame_count_csr112") == 3)
        #expect(bench.csr(0) & (CSR0Bits.miss | CSR0Bits.rint) == CSR0Bits.miss)
        #expect(bench.driver.close() == 3)
    }

    /// CSR15 DTX and DRX: STRT leaves the disabled side off.
    @Test(arguments: pcnetModels)
    func disabledTransmitterAndReceiver(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x0003)  // DTX | DRX
        #expect(bench.csr(0) & (CSR0Bits.txon | CSR0Bits.rxon) == 0)
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitRing.isOwned(0))
        #expect(bench.csr(0) & CSR0Bits.tdmd == 0)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.counter("rx_dropped_stopped") == 1)
        #expect(try bench.receiveRing.isOwned(0))
    }

    // MARK: Loopback

    @Test(arguments: pcnetModels)
    func internalLoopback(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x0044)  // LOOP | INTL
        bench.harness.setLink(up: false)  // internal loopback needs no cable
        let outgoing = makeFrame(to: bench.mac, length: 80)
        try bench.driver.transmit(outgoing)
        #expect(bench.sentFrames().isEmpty)
        try bench.driver.handleInterrupt()
        #expect(bench.driver.received == [outgoing])
        #expect(bench.counter("loopback_frames") == 1)
        #expect(bench.counter("tx_frames") == 1)
        #expect(bench.counter("rx_crc_errors") == 0)
    }

    @Test(arguments: pcnetModels)
    func externalLoopback(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x0004)  // LOOP
        let outgoing = makeFrame(to: bench.mac, length: 90)
        try bench.driver.transmit(outgoing)
        #expect(bench.sentFrames() == [outgoing])
        try bench.driver.handleInterrupt()
        #expect(bench.driver.received == [outgoing])
        // Frames from the wire are not received in loopback mode.
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.counter("rx_dropped_loopback_mode") == 1)
        #expect(bench.counter("rx_frames") == 1)
    }

    /// DXMTFCS: the guest supplies the FCS; in loopback the receiver checks it.
    @Test(arguments: pcnetModels)
    func loopbackWithGuestFCS(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x004C)  // LOOP | INTL | DXMTFCS
        let payload = makeFrame(to: bench.mac, length: 70)
        let fcs = frameCheckSequence(payload)
        try bench.driver.transmit(payload + fcs)
        #expect(try bench.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.pam)
        #expect(try bench.receiveRing.messageLength(0) == 74)
        #expect(try bench.ram.load(at: bench.receiveBuffer(0), count: 74) == payload + fcs)

        // A wrong FCS: CRC and ERR in the receive descriptor, counted.
        try bench.driver.transmit(payload + fcs.map { $0 ^ 0x01 })
        let status = try bench.receiveRing.status(1)
        let crcError = StatusBits.crc | StatusBits.err | StatusBits.enp
        #expect(status & crcError == crcError)
        #expect(bench.counter("rx_crc_errors") == 1)

        // ADD_FCS in the descriptor overrides DXMTFCS: the chip appends a correct FCS.
        try bench.driver.transmit(payload, extraStatus: StatusBits.addFCS)
        #expect(try bench.receiveRing.status(2) & StatusBits.err == 0)
        #expect(try bench.ram.load(at: bench.receiveBuffer(2), count: 74) == payload + fcs)
        #expect(bench.sentFrames().isEmpty)
    }

    @Test(arguments: pcnetModels)
    func guestFCSIsNotCarriedByThePort(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x0008)  // DXMTFCS
        let payload = makeFrame(to: peerAddress, length: 70)
        try bench.driver.transmit(payload + frameCheckSequence(payload))
        #expect(bench.sentFrames() == [payload])
        #expect(bench.counter("tx_bytes") == 70)
    }

    // MARK: Address filtering

    @Test(arguments: pcnetModels)
    func physicalAddressMatch(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(try bench.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.pam)
        bench.harness.receive(makeFrame(to: MACAddress("02:00:00:00:00:99")!))
        #expect(bench.counter("rx_filtered") == 1)
        #expect(try bench.receiveRing.isOwned(1))
        #expect(!bench.card.port.isPromiscuous)
    }

    @Test(arguments: pcnetModels)
    func promiscuousMode(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x8000)
        #expect(bench.card.port.isPromiscuous)
        let stranger = makeFrame(to: MACAddress("02:00:00:00:00:99")!)
        bench.harness.receive(stranger)
        bench.harness.receive(makeFrame(to: bench.mac))
        bench.harness.receive(makeFrame(to: multicastAddress))
        bench.harness.receive(makeFrame(to: .broadcast))
        for index in 0..<4 {
            // No address-match bits in promiscuous mode.
            #expect(try bench.receiveRing.status(index) == StatusBits.stp | StatusBits.enp)
        }
        #expect(bench.counter("rx_filtered") == 0)
        #expect(try bench.ram.load(at: bench.receiveBuffer(0), count: 64) == stranger)
    }

    @Test(arguments: pcnetModels)
    func disableReceivePhysicalAddress(model: CardModel) throws {
        let bench = try PCNetBench.running(model, mode: 0x2000)  // DRCVPA
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(bench.counter("rx_filtered") == 1)
        #expect(try bench.receiveRing.isOwned(0))
        bench.harness.receive(makeFrame(to: .broadcast))
        #expect(try bench.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.bam)
    }

    @Test(arguments: pcnetModels)
    func broadcastAndDisableReceiveBroadcast(model: CardModel) throws {
        let accepting = try PCNetBench.running(model)
        accepting.harness.receive(makeFrame(to: .broadcast))
        #expect(try accepting.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.bam)

        let refusing = try PCNetBench.running(model, mode: 0x4000)  // DRCVBC
        refusing.harness.receive(makeFrame(to: .broadcast))
        #expect(refusing.counter("rx_filtered") == 1)
        #expect(try refusing.receiveRing.isOwned(0))
        refusing.harness.receive(makeFrame(to: refusing.mac))
        #expect(try refusing.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.pam)
    }

    static let multicastAddresses = [
        "01:00:5e:00:00:01", "01:00:5e:00:00:fb", "33:33:00:00:00:01", "33:33:ff:12:34:56", "01:80:c2:00:00:0e",
        "03:00:00:00:00:01",
    ].map { MACAddress($0)! }

    /// LADRF: the bit the top six bits of the destination's CRC select, as pcnet32_load_multicast computes it.
    @Test(arguments: pcnetModels, multicastAddresses)
    func logicalAddressFilter(model: CardModel, group: MACAddress) throws {
        let bit = multicastHashBit(group)
        let matching = try PCNetBench.running(model, logicalAddressFilter: 1 << UInt64(bit))
        matching.harness.receive(makeFrame(to: group))
        #expect(try matching.receiveRing.status(0) == StatusBits.stp | StatusBits.enp | StatusBits.lafm)
        #expect(matching.counter("rx_filtered") == 0)

        let others = try PCNetBench.running(model, logicalAddressFilter: ~(1 << UInt64(bit)))
        others.harness.receive(makeFrame(to: group))
        #expect(others.counter("rx_filtered") == 1)
        #expect(try others.receiveRing.isOwned(0))
        #expect(others.counter("rx_frames") == 0)
    }

    @Test func independentCRCMatchesTheCheckValue() {
        // The test's own CRC against the CRC-32 check value of "123456789" (0xCBF43926 after inversion).
        #expect(etherCRCLittleEndian([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]) == ~0xCBF4_3926)
    }
}
