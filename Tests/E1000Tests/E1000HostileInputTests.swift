import E1000
import NICCore
import NICHarness
import Testing

/// A small deterministic generator for descriptor and register soups (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("e1000 hostile guest")
struct E1000HostileInputTests {
    @Test(arguments: E1000Chip.allCases)
    func transmitHeadBeyondTheRing(chip: E1000Chip) throws {
        // CVE-2016-1981: TDLEN 128 (8 descriptors), TDH 0x20.
        let bench = try E1000Bench(chip)
        bench.setUpTransmit(count: 8)
        bench.ram.logging = true
        bench.write(0x3810, 0x20)
        bench.write(0x3818, 0x3)
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_ring_errors") == 1)
        #expect(bench.read(0x3810) == 0x20, "TDH left alone")
        #expect(bench.ram.log.isEmpty, "no descriptor read outside the ring")
        // TDT beyond the ring too.
        bench.write(0x3810, 0)
        bench.write(0x3818, 0xFFFF)
        #expect(bench.counter("tx_ring_errors") == 2)
    }

    @Test func zeroAndUnalignedRingLengths() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit(count: 8)
        bench.write(0x3808, 0)
        try bench.queueLegacy(makeFrame(to: peerAddress))
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        bench.write(0x3808, 200)
        #expect(bench.read(0x3808) == 128, "RDLEN/TDLEN low bits are read-only zero")
        bench.write(0x2808, 0)
        bench.write(0x100, 0x8002)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_ring_errors") == 1)
        #expect(bench.read(0x40A0) == 1, "RNBC")
        // The frame waited at the head of the FIFO; a real ring takes it.
        try bench.setUpReceive(count: 8)
        #expect(bench.counter("rx_frames") == 1)
        // RDH beyond the ring.
        bench.write(0x2810, 0x40)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.read(0x2810) == 0x40)
        #expect(bench.counter("rx_frames") == 1)
        #expect(bench.counter("rx_ring_errors") == 2)
    }

    @Test func segmentationWithZeroHeaderAndMSS() throws {
        // CVE-2015-6815: TSE with HDRLEN = MSS = 0.
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit()
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 100, command: 0x07,
            headerLength: 0, mss: 0)
        try bench.queueData(
            makeFrame(to: peerAddress, length: 200), command: Command.segmentation | Command.last, options: 0x3)
        // HDRLEN longer than the chain.
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 100, command: 0x07,
            headerLength: 200, mss: 100)
        try bench.queueData(
            makeFrame(to: peerAddress, length: 100), command: Command.segmentation | Command.last, options: 0x3)
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.read(0x40FC) == 2, "TSCTFC")
        #expect(bench.read(0x3810) == 4)
        #expect(try bench.transmitStatus(1) == 1)
    }

    @Test func contextChangedInTheMiddleOfASegmentationChain() throws {
        // VirtualBox 2018: ctx(TSE, HDR 0, MSS 0x3010); data(TSE, 0x10); data(TSE, 0, EOP); ctx(MSS 0xF);
        // data(TSE, 0x4188, EOP).
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit(count: 16)
        try bench.queueContext(
            ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, payloadLength: 0, command: 0x04,
            headerLength: 0, mss: 0x3010)
        try bench.queueData([UInt8](repeating: 0x41, count: 0x10), command: Command.segmentation, options: 0)
        try bench.queueData([], command: Command.segmentation | Command.endOfPacket, options: 0)
        try bench.queueContext(
            ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, payloadLength: 0, command: 0x04,
            headerLength: 0, mss: 0xF)
        try bench.queueData(
            [UInt8](repeating: 0x42, count: 0x4188), command: Command.segmentation | Command.last, options: 0)
        bench.ring()
        #expect(bench.read(0x3810) == 5)
        // A sane context taken mid-chain applies to the next frame only.
        let payload = [UInt8](repeating: 7, count: 300)
        let frame = E1000TransmitTests.tsoFrame(payload: payload)
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 300, command: 0x07,
            headerLength: 54, mss: 100)
        try bench.queueData(Array(frame[0..<100]), command: Command.segmentation, options: 0x3)
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 300, command: 0x07,
            headerLength: 54, mss: 1)
        try bench.queueData(Array(frame[100...]), command: Command.segmentation | Command.last, options: 0x3)
        bench.ring()
        let segments = bench.sentFrames()
        #expect(segments.count == 3)
        #expect(segments.allSatisfy { checksumsVerify($0).transport })
    }

    @Test func chainWithoutEndOfPacketIsBounded() throws {
        let bench = try E1000Bench(.i82545EM)
        bench.setUpTransmit(count: 64)
        for _ in 0..<20 {
            try bench.queueLegacy([UInt8](repeating: 1, count: 1000), command: Command.insertFCS | Command.reportStatus)
        }
        bench.ring()
        #expect(bench.read(0x3810) == 20, "every descriptor was consumed")
        #expect(bench.sentFrames().isEmpty)
        try bench.queueLegacy([UInt8](repeating: 1, count: 10))
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_oversize") == 1)
        // The next frame is fine.
        try bench.queueLegacy(makeFrame(to: peerAddress))
        bench.ring()
        #expect(bench.sentFrames().count == 1)
    }

    @Test func emptyFramesAreDroppedNotPadded() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit()
        try bench.putDescriptor(buffer: 0, lower: 0x0B00_0000, upper: 0)
        bench.ring()
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.counter("tx_dropped_empty") == 1)
        #expect(try bench.transmitStatus(0) == 1)
    }

    @Test func aRingWalkStopsAfterOneRingLength() throws {
        let bench = try E1000Bench(.i82540EM)
        bench.setUpTransmit(count: 8)
        for _ in 0..<7 { try bench.queueLegacy(makeFrame(to: peerAddress)) }
        bench.ring()
        #expect(bench.sentFrames().count == 7)
        #expect(bench.read(0x3810) == 7)
    }

    @Test func dmaIntoTheCardsOwnBARIsRefused() throws {
        // CVE-2023-3019: buffers and rings inside BAR0.
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 8, rctl: 0x8002)
        try bench.ram.storeLittleEndian(UInt64(E1000Bench.memoryBase + 0x3818), at: E1000Bench.Layout.receiveRing)
        bench.ram.logging = true
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_dma_errors") == 1)
        #expect(try bench.receiveDescriptor(0).errors & 0x80 != 0, "RXE")
        #expect(!bench.ram.log.contains { $0.isWrite && $0.address.rawValue >= E1000Bench.memoryBase })
        bench.setUpTransmit(count: 8)
        try bench.putDescriptor(buffer: UInt64(E1000Bench.memoryBase), lower: 64 | 0x0B00_0000, upper: 0)
        bench.ring()
        #expect(bench.counter("tx_dma_errors") == 1)
        #expect(bench.sentFrames().isEmpty)
        #expect(bench.read(0x3810) == 1)
        #expect(bench.read(0x3818) == 1, "TDT unchanged: DMA never reached the registers")
        // The ring itself inside the BAR.
        bench.write(0x3800, E1000Bench.memoryBase)
        bench.write(0x3818, 2)
        #expect(bench.counter("tx_dma_errors") == 2)
        #expect((3..<100).contains(bench.counter("dma_faults")))
    }

    @Test func dmaBeyondRAMAndWrappingAddresses() throws {
        let bench = try E1000Bench(.i82545EM, ramSize: 4 << 20)
        bench.setUpTransmit(count: 8)
        try bench.putDescriptor(buffer: 0xFFFF_FFFF_FFFF_FFF0, lower: 64 | 0x0B00_0000, upper: 0)
        try bench.putDescriptor(buffer: 8 << 20, lower: 64 | 0x0B00_0000, upper: 0)
        bench.ring()
        #expect(bench.counter("tx_dma_errors") == 2)
        bench.write(0x3804, 0xFFFF_FFFF)
        bench.write(0x3800, 0xFFFF_FFF0)
        bench.write(0x3818, 4)
        #expect(bench.counter("tx_dma_errors") == 3)
        try bench.setUpReceive(count: 8)
        bench.write(0x2804, 0xFFFF_FFFF)
        bench.write(0x2800, 0xFFFF_FF80)
        bench.deliver(makeFrame(to: E1000Bench.mac))
        #expect(bench.counter("rx_dma_errors") == 1)
    }

    @Test func loopbackWithHugeSegments() throws {
        // CVE-2017-10235: LBM with a TSE context whose MSS is near 64 KiB.
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 8, rctl: 0x8002 | RCTLBits.macLoopback | RCTLBits.longPackets)
        bench.setUpTransmit()
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 0xF_FFFF, command: 0x07,
            headerLength: 255, mss: 0xFFFF)
        try bench.queueData(
            [UInt8](repeating: 3, count: 20000), command: Command.segmentation | Command.last, options: 3)
        bench.ring()
        #expect(bench.read(0x40FC) == 1, "TSCTFC")
        // MSS 1 over a 64 KiB payload in loopback: bounded, the queue overflow is counted.
        try bench.queueContext(
            ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, payloadLength: 0, command: 0x07,
            headerLength: 54, mss: 1)
        try bench.queueData(
            E1000TransmitTests.tsoFrame(payload: [UInt8](repeating: 9, count: 4000), to: E1000Bench.mac),
            command: Command.segmentation | Command.last, options: 3)
        bench.ring()
        #expect(bench.counter("loopback_dropped") == 4000 - 64)
        #expect(bench.read(0x2810) == 7, "the ring took what it had room for")
        #expect((1..<10000).contains(bench.counter("rx_missed")))
    }

    @Test func hugeFramesFromTheAttachment() throws {
        let bench = try E1000Bench(.i82540EM)
        try bench.setUpReceive(count: 8, rctl: 0x8002 | RCTLBits.longPackets | RCTLBits.bufferSize(256))
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 70000))
        #expect(bench.counter("rx_dropped_oversize") == 1)
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 2000))
        #expect(bench.counter("rx_dropped_ring_too_small") == 1, "a frame that can never fit is dropped")
        bench.deliver([])
        #expect(bench.counter("rx_dropped_runt") == 1)
    }

    @Test func nullReceiveBuffersAreSkipped() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(count: 8, rctl: 0x8002)
        try bench.ram.storeLittleEndian(UInt64(0), at: E1000Bench.Layout.receiveRing)
        let frame = makeFrame(to: E1000Bench.mac)
        bench.deliver(frame)
        #expect(try bench.receiveDescriptor(0).status == 0x01, "DD only")
        #expect(try bench.receiveDescriptor(0).length == 0)
        #expect(try bench.receivedBytes(1) == frame + frameCheckSequence(frame))
    }

    @Test(arguments: E1000Chip.allCases)
    func everyOffsetAtEveryWidth(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip, ramSize: 1 << 20)
        try bench.setUpReceive(count: 8)
        bench.setUpTransmit(count: 8)
        for offset in stride(from: UInt64(0), to: 128 << 10, by: 4) {
            for width in [1, 2, 4, 8] {
                let lane = offset + UInt64(width == 8 ? 0 : (offset >> 2) % UInt64(5 - width))
                _ = bench.card.barRead(0, offset: lane, width: width)
                bench.card.barWrite(0, offset: lane, width: width, value: offset & 0x4 == 0 ? .max : 0)
            }
        }
        for offset in 0..<8 {
            for width in [1, 2, 4, 8] {
                _ = bench.card.barRead(2, offset: UInt64(offset), width: width)
                bench.card.barWrite(2, offset: UInt64(offset), width: width, value: UInt64(offset) << 13)
            }
        }
        // Still a working card after a reset.
        bench.write(0, 1 << 26)
        #expect(bench.read(0x08) & 0x2 != 0)
        #expect(bench.bitBangEEPROM(0x0D) == chip.deviceID)
    }

    @Test(arguments: E1000Chip.allCases)
    func registerAndDescriptorSoup(chip: E1000Chip) throws {
        var random = SeededGenerator(state: 0xE1000 &+ UInt64(chip.deviceID))
        let bench = try E1000Bench(chip, ramSize: 8 << 20)
        try bench.setUpReceive(count: 32, rctl: 0x8002 | RCTLBits.longPackets)
        bench.setUpTransmit(count: 32)
        let registers = [
            0x0000, 0x0010, 0x0014, 0x0018, 0x0020, 0x0038, 0x00C4, 0x00C8, 0x00D0, 0x0100, 0x0400, 0x2800, 0x2808,
            0x2810, 0x2818, 0x2820, 0x282C, 0x3800, 0x3808, 0x3810, 0x3818, 0x3820, 0x382C, 0x5000, 0x5400, 0x5404,
        ]
        for round in 0..<300 {
            // Fill the transmit ring with random descriptors whose buffers mostly point into RAM.
            for i in 0..<32 {
                let at = E1000Bench.Layout.transmitRing + UInt64(i) * 16
                let buffer = random.next() % 4 == 0 ? random.next() : random.next() % (8 << 20)
                try bench.ram.storeLittleEndian(buffer, at: at)
                try bench.ram.storeLittleEndian(random.next(), at: at + 8)
            }
            switch random.next() % 6 {
            case 0:
                let register = registers[Int(random.next() % UInt64(registers.count))]
                if register == 0x0000 && random.next() % 4 != 0 { break }
                bench.write(register, UInt32(truncatingIfNeeded: random.next()))
            case 1:
                bench.card.barWrite(
                    0, offset: random.next() % (128 << 10), width: [1, 2, 4, 8][round % 4], value: random.next())
            case 2:
                let length = Int(random.next() % 17000)
                bench.deliver((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            case 3:
                bench.clock.advance(by: .microseconds(Int64(random.next() % 1000)))
            case 4:
                bench.ioWrite(0, UInt32(truncatingIfNeeded: random.next()))
                bench.ioWrite(4, UInt32(truncatingIfNeeded: random.next()))
            default:
                bench.write(0x3818, UInt32(truncatingIfNeeded: random.next() % 40))
            }
            // Keep the PCI function enabled so the soup keeps reaching the data paths.
            bench.card.configWrite(offset: 0x04, width: 2, value: 0x0007)
            let transmitCount = Int(bench.read(0x3808)) / 16
            if transmitCount > 0, Int(bench.read(0x3810)) < transmitCount, Int(bench.read(0x3818)) < transmitCount {
                #expect(Int(bench.read(0x3810)) < transmitCount)
            }
        }
        #expect(bench.card.counters.count > 20)
    }
}
