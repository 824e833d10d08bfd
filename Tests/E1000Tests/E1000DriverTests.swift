import E1000
import NICCore
import Testing

@Suite("e1000 as Linux's e1000 drives it")
struct E1000DriverTests {
    /// The probe sequence of e1000_probe / e1000_reset_hw / e1000_init_hw, reduced to what the chip must answer.
    @Test(arguments: E1000Chip.allCases)
    func linuxProbeAndOpen(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        // e1000_reset_hw: mask everything, stop both units, then reset (through the I/O BAR on the 82540/82545).
        bench.write(0xD8, 0xFFFF_FFFF)
        bench.write(0x0100, 0)
        bench.write(0x0400, 0x8)
        let ctrl = bench.read(0x0000)
        if chip == .i82543GC {
            bench.write(0x0000, ctrl | 1 << 26)
        } else {
            bench.writeThroughIO(0x0000, ctrl | 1 << 26)
        }
        bench.write(0xD8, 0xFFFF_FFFF)
        _ = bench.read(0xC0)
        #expect(!bench.interrupt)
        // e1000_validate_eeprom_checksum and e1000_read_mac_addr.
        let words = (0..<64).map { bench.bitBangEEPROM($0) }
        #expect(words.reduce(UInt16(0)) { $0 &+ $1 } == 0xBABA)
        let mac = (0..<3).flatMap { [UInt8(words[$0] & 0xFF), UInt8(words[$0] >> 8)] }
        #expect(MACAddress(bytes: mac) == E1000Bench.mac)
        // e1000_set_media_type: copper (STATUS.TBIMODE clear); e1000_get_bus_info: 32-bit PCI.
        #expect(bench.read(0x08) & 0x3020 == 0)
        // e1000_detect_gig_phy.
        let id: UInt32
        if chip == .i82543GC {
            bench.write(0x18, 0x100)  // e1000_phy_hw_reset: SDP4 low...
            bench.write(0x18, 0x110)  // ...and high again
            id = UInt32(bench.mdioRead(register: 2)) << 16 | UInt32(bench.mdioRead(register: 3))
        } else {
            bench.write(0x0000, bench.read(0) | 1 << 31)  // PHY_RST
            bench.write(0x0000, bench.read(0) & ~(1 << 31))
            id = (bench.mdicRead(register: 2) & 0xFFFF) << 16 | (bench.mdicRead(register: 3) & 0xFFFF)
        }
        #expect(id & 0xFFFF_FFF0 == (chip == .i82543GC ? 0x0141_0C50 : 0x0141_0C20))
        // e1000_init_rx_addrs, the MTA and VFTA cleared, statistics cleared by reading them.
        for offset in stride(from: 0x4000, to: 0x4100, by: 4) { _ = bench.read(offset) }
        // e1000_configure_tx/rx and e1000_setup_rctl; ITR for 20000 interrupts/s.
        bench.write(0xC4, 195)
        bench.setUpTransmit(count: 256)
        try bench.setUpReceive(count: 256, rctl: 0x0000_8002)
        bench.write(0xD0, 0x9D)  // IMS_ENABLE_MASK: RXT0 TXDW RXDMT0 RXSEQ LSC
        // Traffic both ways.
        let frame = makeFrame(to: peerAddress, length: 200)
        try bench.queueLegacy(frame)
        bench.ring()
        #expect(bench.sentFrames() == [frame])
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 300))
        #expect(try bench.receiveDescriptor(0).length == 304)
        #expect(bench.interrupt)
        #expect(bench.read(0xC0) & 0x81 == 0x81)
    }

    @Test(arguments: E1000Chip.allCases)
    func phyLinkFollowsTheCable(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        func phyStatus() -> UInt16 {
            chip == .i82543GC
                ? bench.mdioRead(register: 1) : UInt16(truncatingIfNeeded: bench.mdicRead(register: 1))
        }
        #expect(phyStatus() & 0x24 == 0x24)
        bench.card.cableConnected = false
        #expect(phyStatus() & 0x24 == 0)
        bench.card.cableConnected = true
        #expect(phyStatus() & 0x24 == 0x24)
    }

    @Test func statisticsCountAndClearOnRead() throws {
        let bench = try E1000Bench(.i82545EM)
        try bench.setUpReceive(rctl: 0x0000_8002 | RCTLBits.multicastPromiscuous)
        bench.setUpTransmit()
        bench.deliver(makeFrame(to: .broadcast, length: 60))
        bench.deliver(makeFrame(to: MACAddress("01:00:5e:00:00:01")!, length: 300))
        bench.deliver(makeFrame(to: E1000Bench.mac, length: 1514))
        try bench.queueLegacy(makeFrame(to: MACAddress("01:00:5e:00:00:01")!, length: 600))
        try bench.queueLegacy(makeFrame(to: .broadcast, length: 1000))
        bench.ring()
        let expected: [Int: UInt32] = [
            0x405C: 1, 0x4068: 1, 0x4070: 1,  // PRC64, PRC511, PRC1522
            0x4074: 3, 0x4078: 1, 0x407C: 1,  // GPRC, BPRC, MPRC
            0x4080: 2, 0x4088: 64 + 304 + 1518, 0x4090: 604 + 1004,  // GPTC, GORCL, GOTCL
            0x40C0: 64 + 304 + 1518, 0x40C8: 604 + 1004, 0x40D0: 3, 0x40D4: 2,  // TORL, TOTL, TPR, TPT
            0x40E8: 2, 0x40EC: 0, 0x40F0: 1, 0x40F4: 1,  // PTC1023 (608 and 1008 with FCS), PTC1522, MPTC, BPTC
        ]
        var seen: [Int: UInt32] = [:]
        for offset in stride(from: 0x4000, to: 0x4100, by: 4) { seen[offset] = bench.read(offset) }
        for (offset, value) in expected {
            #expect(seen[offset] == value, "statistic at 0x\(String(offset, radix: 16))")
        }
        for offset in stride(from: 0x4000, to: 0x4100, by: 4) {
            #expect(bench.read(offset) == 0, "0x\(String(offset, radix: 16)) cleared on read")
        }
        // The user's counters are cumulative.
        #expect(bench.counter("rx_frames") == 3)
        #expect(bench.counter("tx_frames") == 2)
    }
}
