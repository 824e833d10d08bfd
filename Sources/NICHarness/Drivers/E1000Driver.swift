import NICCards
import NICCore
import NICTrace

/// Plays Linux's e1000 driver against an Intel PRO/1000 card (82540EM, 82543GC, 82545EM) through a ``CardHarness``:
/// the register accesses of probe (reset through the I/O window, EEPROM read by bit-banging EECD and its checksum,
/// PHY identification), open (rings, RCTL, TCTL, interrupt mask), transmit (legacy, checksum context and TSO),
/// the interrupt handler and close. Run with a ``TraceRecorder`` attached, a session becomes a trace fixture.
public final class E1000Driver {
    /// What probing found.
    public struct ProbeResult: Hashable, Sendable {
        /// The 64 EEPROM words as read by bit-banging EECD.
        public var eeprom: [UInt16]
        /// Whether the words sum to 0xBABA.
        public var checksumValid: Bool
        /// The MAC address in EEPROM words 0-2.
        public var macAddress: MACAddress
        /// PHY_ID1 << 16 | PHY_ID2, revision bits included.
        public var phyID: UInt32
        /// The I/O BAR Linux found, if any.
        public var ioBAR: Int?
    }

    /// Register offsets (Linux's names).
    public enum Register {
        public static let ctrl: UInt64 = 0x0000
        public static let status: UInt64 = 0x0008
        public static let eecd: UInt64 = 0x0010
        public static let eerd: UInt64 = 0x0014
        public static let ctrlExt: UInt64 = 0x0018
        public static let mdic: UInt64 = 0x0020
        public static let vet: UInt64 = 0x0038
        public static let icr: UInt64 = 0x00C0
        public static let itr: UInt64 = 0x00C4
        public static let ics: UInt64 = 0x00C8
        public static let ims: UInt64 = 0x00D0
        public static let imc: UInt64 = 0x00D8
        public static let rctl: UInt64 = 0x0100
        public static let tctl: UInt64 = 0x0400
        public static let tipg: UInt64 = 0x0410
        public static let pba: UInt64 = 0x1000
        public static let rdbal: UInt64 = 0x2800
        public static let rdbah: UInt64 = 0x2804
        public static let rdlen: UInt64 = 0x2808
        public static let rdh: UInt64 = 0x2810
        public static let rdt: UInt64 = 0x2818
        public static let rdtr: UInt64 = 0x2820
        public static let radv: UInt64 = 0x282C
        public static let tdbal: UInt64 = 0x3800
        public static let tdbah: UInt64 = 0x3804
        public static let tdlen: UInt64 = 0x3808
        public static let tdh: UInt64 = 0x3810
        public static let tdt: UInt64 = 0x3818
        public static let tidv: UInt64 = 0x3820
        public static let tadv: UInt64 = 0x382C
        public static let mpc: UInt64 = 0x4010
        public static let gprc: UInt64 = 0x4074
        public static let gptc: UInt64 = 0x4080
        public static let rxcsum: UInt64 = 0x5000
        public static let mta: UInt64 = 0x5200
        public static let ra: UInt64 = 0x5400
        public static let vfta: UInt64 = 0x5600
    }

    /// Interrupt causes (ICR, IMS).
    public enum Cause {
        public static let txdw: UInt32 = 0x01
        public static let txqe: UInt32 = 0x02
        public static let lsc: UInt32 = 0x04
        public static let rxseq: UInt32 = 0x08
        public static let rxdmt0: UInt32 = 0x10
        public static let rxo: UInt32 = 0x40
        public static let rxt0: UInt32 = 0x80
        /// IMS_ENABLE_MASK: what Linux unmasks.
        public static let enabled: UInt32 = rxt0 | txdw | rxdmt0 | rxseq | lsc
    }

    /// Guest-memory layout: rings of up to 4096 descriptors, a 4 KiB buffer per descriptor (up to 1792 receive and
    /// 2048 transmit buffers in 16 MiB of RAM).
    public enum Layout {
        public static let receiveRing: UInt64 = 0x10000
        public static let transmitRing: UInt64 = 0x20000
        public static let receiveBuffers: UInt64 = 0x100000
        public static let transmitBuffers: UInt64 = 0x800000
        public static let receiveStride: UInt64 = 0x1000
        public static let transmitStride: UInt64 = 0x1000
    }

    public let harness: CardHarness
    /// BAR0, the register window.
    public let registerBAR = 0
    /// The I/O BAR (IOADDR/IODATA), if the card has one.
    public let ioBAR: Int?
    public private(set) var receiveCount = 256
    public private(set) var transmitCount = 256
    /// Receive buffer size in bytes (2048 for a standard MTU; 4096 pages for jumbo frames, as Linux does).
    public private(set) var receiveBufferSize = 2048
    private var nextReceive = 0
    private var nextTransmit = 0
    private var dirtyTransmit = 0
    /// Pieces of a frame spread over several receive descriptors, waiting for EOP.
    private var partial: [UInt8] = []
    /// Frames received, in order, without FCS.
    public private(set) var received: [[UInt8]] = []
    /// Status bytes of the last descriptor of each received frame.
    public private(set) var receivedStatus: [UInt8] = []
    /// Receive descriptors that came back with an error bit.
    public private(set) var receiveErrors = 0
    /// Transmit descriptors that came back without DD after the chip reported them done.
    public private(set) var transmitErrors = 0
    /// Every ICR value the interrupt handler read, in order.
    public private(set) var causes: [UInt32] = []

    public init(harness: CardHarness) {
        self.harness = harness
        ioBAR = (1..<6).first { harness.space(ofBAR: $0) == .io }
    }

    var chip: CardModel { harness.model }

    // MARK: Register access (er32 / ew32, E1000_WRITE_REG_IO)

    public func read(_ register: UInt64, comment: String? = nil) -> UInt32 {
        UInt32(truncatingIfNeeded: harness.read(bar: registerBAR, offset: register, width: 4, comment: comment))
    }

    public func write(_ register: UInt64, _ value: UInt32, comment: String? = nil) {
        harness.write(bar: registerBAR, offset: register, width: 4, value: UInt64(value), comment: comment)
    }

    /// e1000_write_reg_io: IOADDR = register, IODATA = value.
    public func writeThroughIO(_ register: UInt64, _ value: UInt32, comment: String? = nil) {
        guard let ioBAR else { return write(register, value, comment: comment) }
        harness.write(bar: ioBAR, offset: 0, width: 4, value: register, comment: comment ?? "IOADDR")
        harness.write(bar: ioBAR, offset: 4, width: 4, value: UInt64(value))
    }

    /// Reads a register through IOADDR/IODATA.
    public func readThroughIO(_ register: UInt64) -> UInt32 {
        guard let ioBAR else { return read(register) }
        harness.write(bar: ioBAR, offset: 0, width: 4, value: register)
        return UInt32(truncatingIfNeeded: harness.read(bar: ioBAR, offset: 4, width: 4))
    }

    /// E1000_WRITE_FLUSH: a STATUS read.
    func flush() { _ = read(Register.status) }

    // MARK: Probe

    /// pci_enable_device, the BARs placed, pci_set_master.
    public func enableDevice() {
        _ = harness.configRead(0x00, width: 4, comment: "vendor and device ID")
        _ = harness.configRead(0x2C, width: 4, comment: "subsystem IDs")
        _ = harness.configRead(0x08, width: 1, comment: "revision")
        harness.configWrite(0x10, width: 4, value: 0xFEBC_0000, comment: "BAR0: registers")
        if let ioBAR {
            harness.configWrite(0x10 + 4 * ioBAR, width: 4, value: 0xC001, comment: "BAR\(ioBAR): IOADDR/IODATA")
        }
        harness.configWrite(0x04, width: 2, value: 0x0007, comment: "I/O, memory, bus master")
    }

    /// e1000_probe: reset (through the I/O window on the 82540EM and 82545EM), EEPROM words and checksum, MAC address,
    /// PHY identity.
    public func probe() throws(HarnessError) -> ProbeResult {
        resetHardware()
        let words = (0..<64).map { readEEPROM(word: $0) }
        let sum = words.reduce(UInt16(0)) { $0 &+ $1 }
        var mac: [UInt8] = []
        for word in words.prefix(3) { mac += [UInt8(word & 0xFF), UInt8(word >> 8)] }
        guard let address = MACAddress(bytes: mac) else { throw HarnessError("EEPROM words 0-2 are not a MAC") }
        let id1 = try readPHY(register: 2)
        let id2 = try readPHY(register: 3)
        return ProbeResult(
            eeprom: words, checksumValid: sum == 0xBABA, macAddress: address,
            phyID: UInt32(id1) << 16 | UInt32(id2), ioBAR: ioBAR)
    }

    /// e1000_reset_hw: mask everything, stop both units, CTRL.RST (through IOADDR/IODATA where Linux needs the I/O
    /// port), wait, mask again and clear ICR.
    public func resetHardware() {
        write(Register.imc, 0xFFFF_FFFF, comment: "mask every interrupt")
        write(Register.rctl, 0)
        write(Register.tctl, 0x8, comment: "TCTL.PSP")
        flush()
        let ctrl = read(Register.ctrl)
        if chip == .e82543gc {
            write(Register.ctrl, ctrl | 0x0400_0000, comment: "CTRL.RST")
        } else {
            writeThroughIO(Register.ctrl, ctrl | 0x0400_0000, comment: "CTRL.RST through IOADDR/IODATA")
        }
        harness.advance(nanoseconds: 5_000_000)
        write(Register.imc, 0xFFFF_FFFF)
        _ = read(Register.icr, comment: "clear pending causes")
    }

    // MARK: Open and close

    /// e1000_open: receive address and multicast table, link up (SLU, the PHY's autonegotiation), transmit and
    /// receive rings, RCTL (LPE and 4096-byte buffers when `jumbo`), the interrupt mask.
    public func open(
        receiveCount: Int = 256, transmitCount: Int = 256, jumbo: Bool = false, promiscuous: Bool = false,
        vlanStrip: Bool = false, receiveOwned: Int? = nil
    ) throws(HarnessError) {
        guard receiveCount % 8 == 0, transmitCount % 8 == 0, (8...1792).contains(receiveCount),
            (8...2048).contains(transmitCount)
        else { throw HarnessError("ring sizes must be multiples of 8, at most 1792 (receive) and 2048 (transmit)") }
        self.receiveCount = receiveCount
        self.transmitCount = transmitCount
        receiveBufferSize = jumbo ? 4096 : 2048
        nextReceive = 0
        nextTransmit = 0
        dirtyTransmit = 0
        partial = []

        write(Register.pba, 0x30, comment: "PBA: 48 KB receive")
        let mac = harness.card.macAddress.bytes
        let low = UInt32(mac[0]) | UInt32(mac[1]) << 8 | UInt32(mac[2]) << 16 | UInt32(mac[3]) << 24
        write(Register.ra, low, comment: "RA[0]")
        write(Register.ra + 4, UInt32(mac[4]) | UInt32(mac[5]) << 8 | 0x8000_0000)
        for index in 1..<16 {
            write(Register.ra + UInt64(index) * 8, 0)
            write(Register.ra + UInt64(index) * 8 + 4, 0)
        }
        for index in 0..<128 { write(Register.mta + UInt64(index) * 4, 0) }
        write(Register.vet, 0x8100)

        var ctrl = read(Register.ctrl) | 0x40
        if chip == .e82543gc {
            ctrl |= 0x1800 | 0x200 | 0x1
        } else {
            ctrl &= ~UInt32(0x1800)
        }
        if vlanStrip { ctrl |= 0x4000_0000 }
        write(Register.ctrl, ctrl, comment: "CTRL.SLU")
        try writePHY(register: 4, 0x01E1)
        try writePHY(register: 9, 0x0200)
        try writePHY(register: 0, 0x1340)
        _ = try readPHY(register: 1)

        for index in 0..<transmitCount {
            try harness.store([UInt8](repeating: 0, count: 16), at: Layout.transmitRing + UInt64(index) * 16)
        }
        write(Register.tdbal, UInt32(Layout.transmitRing))
        write(Register.tdbah, 0)
        write(Register.tdlen, UInt32(transmitCount * 16))
        write(Register.tdh, 0)
        write(Register.tdt, 0)
        write(Register.tipg, 0x0060_2008)
        write(Register.tidv, 8)
        if chip != .e82543gc { write(Register.tadv, 32) }
        write(Register.tctl, 0x0103_F0FA, comment: "TCTL: EN, PSP, CT 15, COLD 63, RTLC")

        write(Register.rdtr, 0)
        if chip != .e82543gc {
            write(Register.radv, 8)
            write(Register.itr, 1_000_000_000 / (20_000 * 256), comment: "ITR: 20000 interrupts/s")
        }
        write(Register.rdbal, UInt32(Layout.receiveRing))
        write(Register.rdbah, 0)
        write(Register.rdlen, UInt32(receiveCount * 16))
        write(Register.rdh, 0)
        write(Register.rdt, 0)
        write(Register.rxcsum, read(Register.rxcsum) | 0x200, comment: "RXCSUM.TUOFL")
        var rctl: UInt32 = 0x2 | 0x8000
        if jumbo { rctl |= 0x20 | 0x30000 | 0x0200_0000 }
        if promiscuous { rctl |= 0x18 }
        write(Register.rctl, rctl, comment: jumbo ? "RCTL: EN, BAM, LPE, 4096-byte buffers" : "RCTL: EN, BAM")
        let owned = min(receiveOwned ?? (receiveCount - 1), receiveCount - 1)
        for index in 0..<receiveCount { try postReceive(index) }
        write(Register.rdt, UInt32(owned), comment: "hand the receive buffers to the chip")
        write(Register.ims, Cause.enabled, comment: "IMS_ENABLE_MASK")
        flush()
    }

    private func receiveBuffer(_ index: Int) -> UInt64 {
        Layout.receiveBuffers + UInt64(index) * Layout.receiveStride
    }

    private func postReceive(_ index: Int) throws(HarnessError) {
        var descriptor = [UInt8](repeating: 0, count: 16)
        put(receiveBuffer(index), into: &descriptor, at: 0, bytes: 8)
        try harness.store(descriptor, at: Layout.receiveRing + UInt64(index) * 16)
    }

    /// Hands every receive descriptor but one to the chip (RDT one behind the next descriptor the driver reads).
    public func giveReceiveBuffers() {
        write(Register.rdt, UInt32((nextReceive + receiveCount - 1) % receiveCount), comment: "RDT")
    }

    /// e1000_down: mask interrupts, stop both units, read the missed-packet counter. Returns MPC.
    @discardableResult
    public func close() -> UInt32 {
        write(Register.imc, 0xFFFF_FFFF)
        write(Register.rctl, 0)
        write(Register.tctl, 0x8)
        flush()
        return read(Register.mpc, comment: "missed packets")
    }

    /// e1000_has_link on copper: STATUS.LU.
    public func linkUp() -> Bool { read(Register.status) & 0x2 != 0 }

    // MARK: Transmit

    private func put(_ value: UInt64, into bytes: inout [UInt8], at offset: Int, bytes count: Int) {
        for i in 0..<count { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// Free transmit descriptors.
    public var transmitSpace: Int { transmitCount - 1 - (nextTransmit - dirtyTransmit) }

    /// Places one descriptor (16 bytes) at the next transmit slot.
    private func queueDescriptor(_ descriptor: [UInt8]) throws(HarnessError) {
        try harness.store(descriptor, at: Layout.transmitRing + UInt64(nextTransmit % transmitCount) * 16)
        nextTransmit += 1
    }

    private func dataDescriptor(
        buffer: UInt64, length: Int, command: UInt32, options: UInt8 = 0, special: UInt16 = 0
    ) -> [UInt8] {
        var descriptor = [UInt8](repeating: 0, count: 16)
        put(buffer, into: &descriptor, at: 0, bytes: 8)
        put(UInt64(UInt32(length) & 0xFFFFF | command), into: &descriptor, at: 8, bytes: 4)
        descriptor[13] = options
        put(UInt64(special), into: &descriptor, at: 14, bytes: 2)
        return descriptor
    }

    /// A piece size between 1 byte and one transmit buffer.
    private static func clampedPiece(_ size: Int) -> Int { min(max(1, size), Int(Layout.transmitStride)) }

    /// The frame's bytes in the transmit buffer of `slot`, split into pieces of at most `maximum` bytes.
    private func storePieces(_ frame: [UInt8], maximum: Int) throws(HarnessError) -> [(UInt64, Int)] {
        var pieces: [(UInt64, Int)] = []
        var offset = 0
        while offset < frame.count {
            let length = min(maximum, frame.count - offset)
            let slot = (nextTransmit + pieces.count) % transmitCount
            let buffer = Layout.transmitBuffers + UInt64(slot) * Layout.transmitStride
            try harness.store(Array(frame[offset..<(offset + length)]), at: buffer)
            pieces.append((buffer, length))
            offset += length
        }
        return pieces
    }

    /// e1000_xmit_frame with a legacy descriptor per piece: IFCS on every piece, EOP|RS (RPS on the 82543GC… Linux
    /// sets RS from the 82543 on) and IDE on the last. `vlan` asks the chip to insert a tag (VLE). Returns `false` when
    /// the ring has no room.
    @discardableResult
    public func transmit(_ frame: [UInt8], pieceSize: Int = 2048, vlan: UInt16? = nil) throws(HarnessError) -> Bool {
        let pieceSize = Self.clampedPiece(pieceSize)
        let count = max(1, (frame.count + pieceSize - 1) / pieceSize)
        guard count <= transmitSpace else { return false }
        let pieces = try storePieces(frame, maximum: pieceSize)
        for (index, (buffer, length)) in pieces.enumerated() {
            var command: UInt32 = 0x0200_0000
            if index == pieces.count - 1 {
                command |= 0x0100_0000 | 0x0800_0000 | 0x8000_0000
                if vlan != nil { command |= 0x4000_0000 }
            }
            try queueDescriptor(
                dataDescriptor(buffer: buffer, length: length, command: command, special: vlan ?? 0))
        }
        write(Register.tdt, UInt32(nextTransmit % transmitCount), comment: "TDT")
        return true
    }

    /// A context descriptor (e1000_tso / e1000_tx_csum).
    private func contextDescriptor(
        ipcss: Int, ipcso: Int, ipcse: Int, tucss: Int, tucso: Int, tucse: Int, command: UInt32, payload: Int,
        headerLength: Int, mss: Int
    ) -> [UInt8] {
        var descriptor = [UInt8](repeating: 0, count: 16)
        descriptor[0] = UInt8(truncatingIfNeeded: ipcss)
        descriptor[1] = UInt8(truncatingIfNeeded: ipcso)
        put(UInt64(UInt16(truncatingIfNeeded: ipcse)), into: &descriptor, at: 2, bytes: 2)
        descriptor[4] = UInt8(truncatingIfNeeded: tucss)
        descriptor[5] = UInt8(truncatingIfNeeded: tucso)
        put(UInt64(UInt16(truncatingIfNeeded: tucse)), into: &descriptor, at: 6, bytes: 2)
        put(UInt64(UInt32(payload) & 0xFFFFF | command), into: &descriptor, at: 8, bytes: 4)
        descriptor[13] = UInt8(truncatingIfNeeded: headerLength)
        put(UInt64(UInt16(truncatingIfNeeded: mss)), into: &descriptor, at: 14, bytes: 2)
        return descriptor
    }

    /// e1000_tso then e1000_tx_queue: an IPv4/TCP frame (no IP options assumed beyond what IHL says) segmented by the
    /// chip at `mss` payload bytes. As Linux does, the IP total length and checksum are zeroed and the TCP checksum
    /// holds the pseudo-header sum without the length.
    @discardableResult
    public func transmitTSO(_ frame: [UInt8], mss: Int, pieceSize: Int = 4096) throws(HarnessError) -> Bool {
        guard frame.count >= 54, frame[12] == 0x08, frame[13] == 0x00, frame[23] == 6 else {
            throw HarnessError("TSO needs an Ethernet/IPv4/TCP frame")
        }
        let ipLength = Int(frame[14] & 0x0F) * 4
        let tcpOffset = 14 + ipLength
        guard frame.count >= tcpOffset + 20 else { throw HarnessError("TSO frame too short for its headers") }
        let headerLength = tcpOffset + Int(frame[tcpOffset + 12] >> 4) * 4
        var prepared = frame
        prepared[16] = 0
        prepared[17] = 0
        prepared[24] = 0
        prepared[25] = 0
        var pseudo = InternetChecksum()
        pseudo.add(Array(prepared[26..<34]))
        pseudo.add([0, 6])
        let partialSum = ~pseudo.value
        prepared[tcpOffset + 16] = UInt8(partialSum >> 8)
        prepared[tcpOffset + 17] = UInt8(partialSum & 0xFF)
        let pieceSize = Self.clampedPiece(pieceSize)
        let count = max(1, (prepared.count + pieceSize - 1) / pieceSize) + 1
        guard count <= transmitSpace else { return false }
        try queueDescriptor(
            contextDescriptor(
                ipcss: 14, ipcso: 24, ipcse: tcpOffset - 1, tucss: tcpOffset, tucso: tcpOffset + 16, tucse: 0,
                command: 0x2000_0000 | 0x0400_0000 | 0x0200_0000 | 0x0100_0000, payload: prepared.count - headerLength,
                headerLength: headerLength, mss: mss))
        let pieces = try storePieces(prepared, maximum: pieceSize)
        for (index, (buffer, length)) in pieces.enumerated() {
            var command: UInt32 = 0x2000_0000 | 0x0010_0000 | 0x0200_0000 | 0x0400_0000
            if index == pieces.count - 1 { command |= 0x0100_0000 | 0x0800_0000 | 0x8000_0000 }
            try queueDescriptor(dataDescriptor(buffer: buffer, length: length, command: command, options: 0x03))
        }
        write(Register.tdt, UInt32(nextTransmit % transmitCount), comment: "TDT")
        return true
    }

    // MARK: Interrupt

    /// e1000_intr and e1000_clean: read ICR; on a cause, mask, reap the transmit and receive rings, unmask. Returns
    /// the ICR value read.
    @discardableResult
    public func handleInterrupt() throws(HarnessError) -> UInt32 {
        let cause = read(Register.icr)
        guard cause != 0 else { return 0 }
        causes.append(cause)
        write(Register.imc, 0xFFFF_FFFF)
        try reapTransmit()
        try reapReceive()
        write(Register.ims, Cause.enabled)
        return cause
    }

    /// e1000_clean_tx_irq: descriptors up to each one with RS (the end of a frame) are done once it reports DD.
    private func reapTransmit() throws(HarnessError) {
        var index = dirtyTransmit
        while index < nextTransmit {
            let address = Layout.transmitRing + UInt64(index % transmitCount) * 16
            let bytes = try harness.load(at: address + 11, count: 2)
            index += 1
            guard bytes[0] & 0x08 != 0 else { continue }
            guard bytes[1] & 0x01 != 0 else { return }
            dirtyTransmit = index
        }
    }

    private func reapReceive() throws(HarnessError) {
        for _ in 0..<receiveCount {
            let slot = nextReceive % receiveCount
            let address = Layout.receiveRing + UInt64(slot) * 16
            let descriptor = try harness.load(at: address + 8, count: 8)
            let status = descriptor[4]
            guard status & 0x01 != 0 else { return }
            let length = Int(descriptor[0]) | Int(descriptor[1]) << 8
            // Linux drops only frame errors (CE, SE, SEQ, CXE, RXE); checksum errors just leave the checksum unverified.
            if descriptor[5] & 0x97 != 0 {
                receiveErrors += 1
                partial = []
            } else {
                partial += try harness.load(at: receiveBuffer(slot), count: length, comment: "received bytes")
                if status & 0x02 != 0 {
                    // Linux strips the FCS the chip leaves in the buffer (no SECRC).
                    received.append(Array(partial.dropLast(4)))
                    receivedStatus.append(status)
                    partial = []
                }
            }
            try postReceive(slot)
            write(Register.rdt, UInt32(slot))
            nextReceive += 1
        }
    }
}
