import NICCards
import NICCore
import NICTrace

/// Plays Linux's pcnet32 driver against a PCnet card through a ``CardHarness``: the same register accesses, in the
/// same order, at probe, open, transmit, interrupt, link check and close. Run with a ``TraceRecorder`` attached, a
/// session becomes a trace fixture.
public final class PCNetDriver {
    /// What probing found.
    public struct ProbeResult: Hashable, Sendable {
        /// CSR88 | CSR89 << 16.
        public var chipVersion: UInt32
        /// The part number Linux derives, `(chipVersion >> 12) & 0xffff`: 0x2621 or 0x2625.
        public var partNumber: UInt32
        /// Linux's name for the chip.
        public var chipName: String
        /// The MAC address in the APROM.
        public var macAddress: MACAddress
        /// The MAC address CSR12-14 hold after reset.
        public var registerAddress: MACAddress
        /// Whether the APROM checksum (bytes 12-13) matches and bytes 14-15 read "WW".
        public var promValid: Bool
        /// PHY addresses that answered on the MII (empty on the Am79C970A).
        public var phyAddresses: [Int]
        /// Whether word I/O (WIO) was usable; otherwise DWIO was.
        public var wordIO: Bool
    }

    /// Guest-memory layout.
    public enum Layout {
        public static let initBlock: UInt64 = 0x1000
        public static let receiveRing: UInt64 = 0x10000
        public static let transmitRing: UInt64 = 0x20000
        public static let receiveBuffers: UInt64 = 0x100000
        public static let transmitBuffers: UInt64 = 0x200000
        /// Linux's PKT_BUF_SZ.
        public static let bufferSize = 1544
        public static let bufferStride: UInt64 = 2048
    }

    public let harness: CardHarness
    /// Whether the driver talks word I/O (the default after reset) or double-word I/O.
    public private(set) var doubleWordIO = false
    /// The software style the rings use.
    public private(set) var style = 2
    public private(set) var receiveCount = 32
    public private(set) var transmitCount = 16
    private var currentReceive = 0
    private var currentTransmit = 0
    private var dirtyTransmit = 0
    /// Frames received, in order, without FCS.
    public private(set) var received: [[UInt8]] = []
    /// Receive descriptors that came back with ERR or without STP|ENP.
    public private(set) var receiveErrors = 0
    /// Transmit descriptors that came back with ERR.
    public private(set) var transmitErrors = 0

    public init(harness: CardHarness) {
        self.harness = harness
    }

    // MARK: Register access (pcnet32_wio_* / pcnet32_dwio_*)

    /// The two data ports behind RAP.
    private enum DataPort {
        case csr, bcr
    }

    /// Selects register `index` through RAP, then reads or writes it through `port`, in the current I/O mode.
    private func access(_ port: DataPort, _ index: Int, write value: UInt16? = nil) -> UInt16 {
        let width = doubleWordIO ? 4 : 2
        let data: UInt64 = port == .csr ? 0x10 : doubleWordIO ? 0x1C : 0x16
        harness.write(bar: 0, offset: doubleWordIO ? 0x14 : 0x12, width: width, value: UInt64(index))
        if let value {
            harness.write(bar: 0, offset: data, width: width, value: UInt64(value))
            return value
        }
        return UInt16(truncatingIfNeeded: harness.read(bar: 0, offset: data, width: width))
    }

    public func readCSR(_ index: Int) -> UInt16 { access(.csr, index) }

    public func writeCSR(_ index: Int, _ value: UInt16) { _ = access(.csr, index, write: value) }

    public func readBCR(_ index: Int) -> UInt16 { access(.bcr, index) }

    public func writeBCR(_ index: Int, _ value: UInt16) { _ = access(.bcr, index, write: value) }

    public func readRAP() -> UInt16 {
        UInt16(
            truncatingIfNeeded: harness.read(bar: 0, offset: doubleWordIO ? 0x14 : 0x12, width: doubleWordIO ? 4 : 2))
    }

    /// S_RESET through the RESET port of the current mode.
    public func reset() {
        if doubleWordIO {
            _ = harness.read(bar: 0, offset: 0x18, width: 4, comment: "DWIO reset")
        } else {
            _ = harness.read(bar: 0, offset: 0x14, width: 2, comment: "WIO reset")
        }
    }

    /// Switches the chip to double-word I/O with a 32-bit write to RDP, as DWIO drivers do.
    public func switchToDoubleWordIO() {
        harness.write(bar: 0, offset: 0x10, width: 4, value: 0, comment: "32-bit write to RDP selects DWIO")
        doubleWordIO = true
    }

    /// MII management read (pcnet32's mdio_read through BCR33/BCR34).
    public func mdioRead(phy: Int, register: Int) -> UInt16 {
        let saved = readBCR(33)
        writeBCR(33, UInt16((phy & 0x1F) << 5 | (register & 0x1F)))
        let value = readBCR(34)
        writeBCR(33, saved)
        return value
    }

    // MARK: Probe and open

    /// Enables the PCI function: BARs placed, I/O, memory and bus mastering on (pci_enable_device, pci_set_master).
    public func enableDevice() {
        _ = harness.configRead(0x00, width: 4, comment: "vendor and device ID")
        harness.configWrite(0x10, width: 4, value: 0xC001, comment: "BAR0: I/O window")
        harness.configWrite(0x14, width: 4, value: 0xFEBF_1000, comment: "BAR1: memory alias")
        harness.configWrite(0x04, width: 2, value: 0x0007, comment: "I/O, memory, bus master")
    }

    /// pcnet32_probe1: reset, find the access mode, identify the chip, read the address, scan the MII, program the
    /// initialization block address.
    public func probe() throws(HarnessError) -> ProbeResult {
        _ = harness.read(bar: 0, offset: 0x18, width: 4, comment: "DWIO reset (ignored in WIO)")
        doubleWordIO = false
        reset()
        var wordIO = readCSR(0) == 4
        if wordIO {
            harness.write(bar: 0, offset: 0x12, width: 2, value: 88, comment: "RAP check")
            wordIO = readRAP() == 88
        }
        if !wordIO {
            doubleWordIO = true
            reset()
            guard readCSR(0) == 4 else { throw HarnessError("no access method: CSR0 is not 4 after reset") }
            harness.write(bar: 0, offset: 0x14, width: 4, value: 88, comment: "RAP check")
            guard readRAP() == 88 else { throw HarnessError("no access method: RAP does not read back") }
        }
        let chipVersion = UInt32(readCSR(88)) | UInt32(readCSR(89)) << 16
        guard chipVersion & 0xFFF == 3 else {
            throw HarnessError("unsupported chip version \(Hex.number(chipVersion))")
        }
        let part = (chipVersion >> 12) & 0xFFFF
        let name: String
        switch part {
        case 0x2621: name = "PCnet/PCI II 79C970A"
        case 0x2625: name = "PCnet/FAST III 79C973"
        default: throw HarnessError("unsupported PCnet part \(Hex.number(part))")
        }
        var registerBytes: [UInt8] = []
        for i in 0..<3 {
            let word = readCSR(12 + i)
            registerBytes.appendLittleEndian16(word)
        }
        let prom = (0..<16).map { UInt8(truncatingIfNeeded: harness.read(bar: 0, offset: UInt64($0), width: 1)) }
        let sum = (prom[0..<12] + prom[14..<16]).reduce(UInt16(0)) { $0 &+ UInt16($1) }
        let promValid = sum == prom.load(littleEndian: UInt16.self, at: 12) && prom[14] == 0x57 && prom[15] == 0x57

        var phys: [Int] = []
        if part == 0x2625 {
            _ = readBCR(33)
            for phy in 0..<32 {
                let id1 = mdioRead(phy: phy, register: 2)
                guard id1 != 0xFFFF else { continue }
                let id2 = mdioRead(phy: phy, register: 3)
                guard id2 != 0xFFFF else { continue }
                phys.append(phy)
            }
            if let first = phys.first { writeBCR(33, UInt16(first << 5)) }
        }
        try writeInitBlock(mode: 0x0003, style: 2)
        writeBCR(20, 2)
        writeCSR(1, UInt16(truncatingIfNeeded: Layout.initBlock))
        writeCSR(2, UInt16(truncatingIfNeeded: Layout.initBlock >> 16))
        writeBCR(2, readBCR(2) | 0x1000)
        return ProbeResult(
            chipVersion: chipVersion, partNumber: part, chipName: name,
            macAddress: MACAddress(bytes: prom[0..<6])!, registerAddress: MACAddress(bytes: registerBytes)!,
            promValid: promValid, phyAddresses: phys, wordIO: !doubleWordIO)
    }

    /// pcnet32_open: reset, software style, media, rings, INIT, wait for IDON, STRT with interrupts enabled.
    /// `mode` goes into the initialization block (0 for normal operation, 0x0044 for internal loopback).
    /// `receiveOwned` receive descriptors are handed to the chip (all by default).
    public func open(
        style: Int = 2, receiveRingLog2: Int = 5, transmitRingLog2: Int = 4, mode: UInt16 = 0,
        logicalAddressFilter: UInt64 = 0, receiveOwned: Int? = nil
    ) throws(HarnessError) {
        guard [0, 2, 3].contains(style) else { throw HarnessError("software style \(style) is not 0, 2 or 3") }
        let maximumLog2 = style == 0 ? 7 : 9
        guard (0...maximumLog2).contains(receiveRingLog2), (0...maximumLog2).contains(transmitRingLog2) else {
            throw HarnessError("ring sizes must be 2^0...2^\(maximumLog2) in style \(style)")
        }
        self.style = style
        receiveCount = 1 << receiveRingLog2
        transmitCount = 1 << transmitRingLog2
        currentReceive = 0
        currentTransmit = 0
        dirtyTransmit = 0
        reset()
        writeBCR(20, UInt16(style))
        writeBCR(2, (readBCR(2) & ~2) | 2)
        if harness.model == .am79c973 {
            writeBCR(9, readBCR(9) & ~3)
        }
        writeCSR(124, readCSR(124) & ~0x10)
        if harness.model == .am79c973 {
            writeBCR(32, readBCR(32) | 0x0080)
            writeBCR(32, (readBCR(32) & ~0x98) | 0x20)
        }
        try writeInitBlock(mode: mode, style: style, filter: logicalAddressFilter)
        let owned = receiveOwned ?? receiveCount
        for index in 0..<receiveCount {
            try writeDescriptor(
                ring: Layout.receiveRing, index: index,
                buffer: UInt32(Layout.receiveBuffers + UInt64(index) * Layout.bufferStride),
                byteCount: Self.negative(Layout.bufferSize), status: index < owned ? 0x8000 : 0, misc: 0)
        }
        for index in 0..<transmitCount {
            try writeDescriptor(ring: Layout.transmitRing, index: index, buffer: 0, byteCount: 0, status: 0, misc: 0)
        }
        writeCSR(1, UInt16(truncatingIfNeeded: Layout.initBlock))
        writeCSR(2, UInt16(truncatingIfNeeded: Layout.initBlock >> 16))
        writeCSR(4, 0x0915)
        writeCSR(0, 0x0001)
        var done = false
        for _ in 0..<100 where !done { done = readCSR(0) & 0x0100 != 0 }
        guard done else { throw HarnessError("IDON never came (CSR0 \(Hex.number(readCSR(0))))") }
        writeCSR(0, 0x0042)
    }

    /// The 12-bit two's complement byte count with the ONES field set.
    static func negative(_ length: Int) -> UInt16 { UInt16(truncatingIfNeeded: -length) & 0x0FFF | 0xF000 }

    private var descriptorSize: UInt64 { style == 0 ? 8 : 16 }

    private func writeInitBlock(mode: UInt16, style: Int, filter: UInt64 = 0) throws(HarnessError) {
        let mac = harness.card.macAddress.bytes
        var block: [UInt8] = []
        func put16(_ value: UInt16) { block.appendLittleEndian16(value) }
        func put32(_ value: UInt32) { block.appendLittleEndian32(value) }
        let receiveLog2 = UInt32(receiveCount.trailingZeroBitCount)
        let transmitLog2 = UInt32(transmitCount.trailingZeroBitCount)
        put16(mode)
        if style == 0 {
            block += mac
            for i in 0..<4 { put16(UInt16(truncatingIfNeeded: filter >> (16 * UInt64(i)))) }
            put32(UInt32(Layout.receiveRing) | receiveLog2 << 29)
            put32(UInt32(Layout.transmitRing) | transmitLog2 << 29)
        } else {
            block += [UInt8(receiveLog2 << 4), UInt8(transmitLog2 << 4)]
            block += mac
            put16(0)
            for i in 0..<4 { put16(UInt16(truncatingIfNeeded: filter >> (16 * UInt64(i)))) }
            put32(UInt32(Layout.receiveRing))
            put32(UInt32(Layout.transmitRing))
        }
        try harness.store(block, at: Layout.initBlock, comment: "initialization block")
    }

    /// Writes a whole descriptor in the current style, status word last (as the driver's wmb() orders it).
    private func writeDescriptor(
        ring: UInt64, index: Int, buffer: UInt32, byteCount: UInt16, status: UInt16, misc: UInt32
    ) throws(HarnessError) {
        let address = ring + UInt64(index) * descriptorSize
        func bytes16(_ value: UInt16) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.appendLittleEndian16(value)
            return bytes
        }
        func bytes32(_ value: UInt32) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.appendLittleEndian32(value)
            return bytes
        }
        if style == 0 {
            // LADR, HADR | status, BCNT, misc: everything but the status byte first.
            try harness.store(
                bytes16(UInt16(truncatingIfNeeded: buffer)) + [UInt8(truncatingIfNeeded: buffer >> 16)], at: address)
            try harness.store(bytes16(byteCount) + bytes16(UInt16(truncatingIfNeeded: misc)), at: address + 4)
            try harness.store([UInt8(truncatingIfNeeded: status >> 8)], at: address + 3)
            return
        }
        // Style 2: TBADR, BCNT | status, misc; style 3 swaps the first and third words.
        try harness.store(bytes32(style == 3 ? misc : buffer) + bytes16(byteCount), at: address)
        try harness.store(bytes32(style == 3 ? buffer : misc), at: address + 8)
        try harness.store(bytes16(status), at: address + 6)
    }

    /// Reads a descriptor's status word (16 bits; the 16-bit style's status byte in the high half).
    private func descriptorStatus(ring: UInt64, index: Int) throws(HarnessError) -> UInt16 {
        let address = ring + UInt64(index) * descriptorSize
        if style == 0 {
            return UInt16(try harness.load(at: address + 3, count: 1)[0]) << 8
        }
        return try harness.load(at: address + 6, count: 2).load(littleEndian: UInt16.self, at: 0) ?? 0
    }

    private func messageLength(index: Int) throws(HarnessError) -> Int {
        let address = Layout.receiveRing + UInt64(index) * descriptorSize
        let offset: UInt64 = style == 0 ? 6 : style == 3 ? 0 : 8
        let bytes = try harness.load(at: address + offset, count: 2)
        return Int(bytes.load(littleEndian: UInt16.self, at: 0) ?? 0) & 0x0FFF
    }

    // MARK: Data path

    /// pcnet32_start_xmit: one frame in one descriptor (OWN|STP|ENP), then TDMD with interrupts enabled.
    /// Returns `false` when the ring is full.
    @discardableResult
    public func transmit(_ frame: [UInt8], extraStatus: UInt16 = 0) throws(HarnessError) -> Bool {
        guard currentTransmit - dirtyTransmit < transmitCount else { return false }
        let entry = currentTransmit % transmitCount
        let buffer = Layout.transmitBuffers + UInt64(entry) * Layout.bufferStride
        try harness.store(frame, at: buffer, comment: "frame to send")
        try writeDescriptor(
            ring: Layout.transmitRing, index: entry, buffer: UInt32(buffer), byteCount: Self.negative(frame.count),
            status: 0x8300 | extraStatus, misc: 0)
        currentTransmit += 1
        writeCSR(0, 0x0048)
        return true
    }

    /// Hands a frame that spans `pieces` descriptors (STP on the first, ENP on the last) to the chip.
    public func transmitChained(_ pieces: [[UInt8]], endOfPacket: Bool = true) throws(HarnessError) {
        let first = currentTransmit
        for (i, piece) in pieces.enumerated() {
            let entry = (first + i) % transmitCount
            let buffer = Layout.transmitBuffers + UInt64(entry) * Layout.bufferStride
            try harness.store(piece, at: buffer)
            var status: UInt16 = 0x8000
            if i == 0 { status |= 0x0200 }
            if i == pieces.count - 1, endOfPacket { status |= 0x0100 }
            // The STP descriptor is handed over last so the chip never sees a half-built chain.
            try writeDescriptor(
                ring: Layout.transmitRing, index: entry, buffer: UInt32(buffer), byteCount: Self.negative(piece.count),
                status: i == 0 ? 0 : status, misc: 0)
        }
        try writeDescriptor(
            ring: Layout.transmitRing, index: first % transmitCount,
            buffer: UInt32(Layout.transmitBuffers + UInt64(first % transmitCount) * Layout.bufferStride),
            byteCount: Self.negative(pieces.first?.count ?? 0),
            status: 0x8200 | (pieces.count == 1 && endOfPacket ? 0x0100 : 0), misc: 0)
        currentTransmit += pieces.count
        writeCSR(0, 0x0048)
    }

    /// pcnet32_interrupt and pcnet32_poll: acknowledge CSR0, mask interrupts, reap the receive and transmit rings,
    /// unmask, re-enable. Returns the CSR0 value that caused the interrupt.
    @discardableResult
    public func handleInterrupt() throws(HarnessError) -> UInt16 {
        let cause = readCSR(0)
        var csr0 = cause
        var rounds = 0
        while csr0 & 0x8F00 != 0, rounds < 8 {
            rounds += 1
            writeCSR(0, csr0 & ~0x004F)
            writeCSR(3, readCSR(3) | 0x5F00)
            try reapReceive()
            try reapTransmit()
            writeCSR(3, readCSR(3) & 0x00FF)
            writeCSR(0, 0x0040)
            csr0 = readCSR(0)
        }
        return cause
    }

    private func reapReceive() throws(HarnessError) {
        for _ in 0..<receiveCount {
            let entry = currentReceive % receiveCount
            let status = try descriptorStatus(ring: Layout.receiveRing, index: entry)
            guard status & 0x8000 == 0 else { return }
            if status >> 8 != 0x03 {
                receiveErrors += 1
            } else {
                let length = try messageLength(index: entry) - 4
                let buffer = Layout.receiveBuffers + UInt64(entry) * Layout.bufferStride
                received.append(try harness.load(at: buffer, count: max(0, length), comment: "received frame"))
            }
            try writeDescriptor(
                ring: Layout.receiveRing, index: entry, buffer: UInt32(buffer(entry)),
                byteCount: Self.negative(Layout.bufferSize), status: 0x8000, misc: 0)
            currentReceive += 1
        }
    }

    private func buffer(_ entry: Int) -> UInt64 { Layout.receiveBuffers + UInt64(entry) * Layout.bufferStride }

    private func reapTransmit() throws(HarnessError) {
        while dirtyTransmit < currentTransmit {
            let entry = dirtyTransmit % transmitCount
            let status = try descriptorStatus(ring: Layout.transmitRing, index: entry)
            guard status & 0x8000 == 0 else { return }
            if status & 0x4000 != 0 { transmitErrors += 1 }
            dirtyTransmit += 1
        }
    }

    /// pcnet32_get_link: the MII's BMSR on the Am79C973 (read twice, the first clears the latch), BCR4 otherwise.
    public func linkUp(phy: Int = 0x1E) -> Bool {
        if harness.model == .am79c973 {
            _ = mdioRead(phy: phy, register: 1)
            return mdioRead(phy: phy, register: 1) & 0x0004 != 0
        }
        return readBCR(4) != 0x00C0
    }

    /// pcnet32_close: read the missed-frame count, STOP, and back to 16-bit structures. Returns CSR112.
    @discardableResult
    public func close() -> UInt16 {
        let missed = readCSR(112)
        writeCSR(0, 0x0004)
        writeBCR(20, 4)
        return missed
    }
}
