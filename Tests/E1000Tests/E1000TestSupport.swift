import E1000
import NICCore
import NICHarness
import Testing

/// An e1000 card on the bench: guest RAM, a manual clock, a recorded INTx line and an attachment that keeps every
/// transmitted frame. The methods play the guest driver, the way Linux's e1000 touches the chip.
final class E1000Bench {
    static let mac = MACAddress("52:54:00:12:34:56")!
    static let memoryBase: UInt32 = 0xF000_0000
    static let ioBase: UInt32 = 0xC000

    enum Layout {
        static let receiveRing: UInt64 = 0x1_0000
        static let transmitRing: UInt64 = 0x2_0000
        static let receiveBuffers: UInt64 = 0x10_0000
        static let receiveStride: UInt64 = 0x4000
        static let transmitBuffers: UInt64 = 0x40_0000
        static let transmitStride: UInt64 = 0x1_0000
    }

    let chip: E1000Chip
    let card: E1000Card
    let ram: GuestRAM
    let clock: ManualClock
    let line: RecordingInterruptLine
    let wire: TransmitRecorder
    var receiveCount = 0
    var transmitCount = 0
    /// The next transmit descriptor the driver fills.
    var transmitTail = 0

    /// A card with its PCI function enabled (BAR0 at 0xF0000000, BAR2 at I/O 0xC000, memory, I/O, bus master),
    /// attached to a recorder with carrier.
    init(_ chip: E1000Chip, ramSize: Int = 16 << 20, attach: Bool = true) throws {
        self.chip = chip
        ram = try GuestRAM(size: ramSize)
        clock = ManualClock()
        line = RecordingInterruptLine()
        card = E1000Card(
            chip: chip, macAddress: Self.mac,
            environment: CardEnvironment(memory: ram, interruptLine: line, clock: clock))
        wire = TransmitRecorder()
        if attach {
            card.port.attach(wire)
            card.service()
        }
        card.configWrite(offset: 0x10, width: 4, value: Self.memoryBase)
        card.configWrite(offset: 0x18, width: 4, value: Self.ioBase)
        card.configWrite(offset: 0x04, width: 2, value: 0x0007)
    }

    // MARK: Registers

    func read(_ offset: Int, width: Int = 4) -> UInt32 {
        UInt32(truncatingIfNeeded: card.barRead(0, offset: UInt64(offset), width: width))
    }

    func write(_ offset: Int, _ value: UInt32, width: Int = 4) {
        card.barWrite(0, offset: UInt64(offset), width: width, value: UInt64(value))
    }

    func ioRead(_ offset: Int, width: Int = 4) -> UInt32 {
        UInt32(truncatingIfNeeded: card.barRead(2, offset: UInt64(offset), width: width))
    }

    func ioWrite(_ offset: Int, _ value: UInt32, width: Int = 4) {
        card.barWrite(2, offset: UInt64(offset), width: width, value: UInt64(value))
    }

    /// E1000_WRITE_REG_IO: IOADDR = register, IODATA = value.
    func writeThroughIO(_ register: Int, _ value: UInt32) {
        ioWrite(0, UInt32(register))
        ioWrite(4, value)
    }

    func readThroughIO(_ register: Int) -> UInt32 {
        ioWrite(0, UInt32(register))
        return ioRead(4)
    }

    var interrupt: Bool { line.level }

    /// The card's counter `name`; `UInt64.max` if it has none by that name (non-optional: ASan flags comparisons
    /// of `UInt64?` inside Swift Testing's expectation machinery).
    func counter(_ name: String) -> UInt64 { card.counters.first { $0.name == name }?.value ?? .max }

    // MARK: EEPROM

    /// Reads EEPROM word `address` by bit-banging EECD as Linux's e1000_read_eeprom does for Microwire parts:
    /// REQ/GNT (not on the 82543GC), CS, opcode 110 and a 6-bit address shifted out on SK, 16 bits shifted in.
    func bitBangEEPROM(_ address: Int) -> UInt16 {
        let sk: UInt32 = 1
        let cs: UInt32 = 2
        let di: UInt32 = 4
        let doBit: UInt32 = 8
        var eecd = read(0x10)
        if chip != .i82543GC {
            eecd |= 0x40
            write(0x10, eecd)
            #expect(read(0x10) & 0x80 != 0, "GNT")
        }
        eecd &= ~(di | sk)
        write(0x10, eecd)
        eecd |= cs
        write(0x10, eecd)
        func shiftOut(_ data: UInt32, _ count: Int) {
            for i in stride(from: count - 1, through: 0, by: -1) {
                eecd = data & (1 << UInt32(i)) != 0 ? eecd | di : eecd & ~di
                write(0x10, eecd)
                write(0x10, eecd | sk)
                write(0x10, eecd)
            }
            eecd &= ~di
            write(0x10, eecd)
        }
        shiftOut(0b110, 3)
        shiftOut(UInt32(address), 6)
        var data: UInt16 = 0
        for _ in 0..<16 {
            data <<= 1
            write(0x10, eecd | sk)
            if read(0x10) & doBit != 0 { data |= 1 }
            write(0x10, eecd)
        }
        eecd &= ~(cs | sk)
        write(0x10, eecd)
        if chip != .i82543GC { write(0x10, eecd & ~0x40) }
        return data
    }

    /// Sends one Microwire command: REQ (not on the 82543GC), CS, the bit groups shifted out on SK, CS dropped.
    func microwire(_ groups: [(value: UInt32, count: Int)]) {
        var eecd = read(0x10) & ~UInt32(0x0F)
        if chip != .i82543GC { eecd |= 0x40 }
        write(0x10, eecd)
        eecd |= 0x2
        write(0x10, eecd)
        for (value, count) in groups {
            for i in stride(from: count - 1, through: 0, by: -1) {
                eecd = value & (1 << UInt32(i)) != 0 ? eecd | 0x4 : eecd & ~0x4
                write(0x10, eecd)
                write(0x10, eecd | 0x1)
                write(0x10, eecd)
            }
        }
        write(0x10, eecd & ~0x7)
        write(0x10, 0)
    }

    /// Reads EEPROM word `address` through EERD.
    func readEERD(_ address: Int) -> UInt16? {
        write(0x14, UInt32(address) << 8 | 1)
        let value = read(0x14)
        guard value & 0x10 != 0 else { return nil }
        return UInt16(truncatingIfNeeded: value >> 16)
    }

    // MARK: PHY

    /// MDIC read: returns the whole MDIC value after the access.
    func mdicRead(phy: Int = 1, register: Int) -> UInt32 {
        write(0x20, UInt32(register) << 16 | UInt32(phy) << 21 | 2 << 26)
        return read(0x20)
    }

    func mdicWrite(phy: Int = 1, register: Int, value: UInt16) -> UInt32 {
        write(0x20, UInt32(value) | UInt32(register) << 16 | UInt32(phy) << 21 | 1 << 26)
        return read(0x20)
    }

    // 82543GC bit-banged MDIO, as Linux's e1000_shift_out_mdi_bits / e1000_shift_in_mdi_bits.
    private static let mdio: UInt32 = 1 << 20
    private static let mdc: UInt32 = 1 << 21
    private static let mdioDirection: UInt32 = 1 << 24
    private static let mdcDirection: UInt32 = 1 << 25

    private func raiseClock(_ ctrl: inout UInt32) {
        ctrl |= Self.mdc
        write(0, ctrl)
    }

    private func lowerClock(_ ctrl: inout UInt32) {
        ctrl &= ~Self.mdc
        write(0, ctrl)
    }

    private func shiftOutMDI(_ data: UInt32, _ count: Int) {
        var ctrl = read(0)
        ctrl |= Self.mdioDirection | Self.mdcDirection
        for i in stride(from: count - 1, through: 0, by: -1) {
            ctrl = data & (1 << UInt32(i)) != 0 ? ctrl | Self.mdio : ctrl & ~Self.mdio
            write(0, ctrl)
            raiseClock(&ctrl)
            lowerClock(&ctrl)
        }
    }

    private func shiftInMDI() -> UInt16 {
        var ctrl = read(0)
        ctrl &= ~Self.mdioDirection
        ctrl &= ~Self.mdio
        write(0, ctrl)
        raiseClock(&ctrl)
        lowerClock(&ctrl)
        var data: UInt16 = 0
        for _ in 0..<16 {
            data <<= 1
            raiseClock(&ctrl)
            ctrl = read(0)
            if ctrl & Self.mdio != 0 { data |= 1 }
            lowerClock(&ctrl)
        }
        raiseClock(&ctrl)
        lowerClock(&ctrl)
        return data
    }

    func mdioRead(phy: Int = 1, register: Int) -> UInt16 {
        shiftOutMDI(0xFFFF_FFFF, 32)
        shiftOutMDI(UInt32(register) | UInt32(phy) << 5 | 2 << 10 | 1 << 12, 14)
        return shiftInMDI()
    }

    func mdioWrite(phy: Int = 1, register: Int, value: UInt16) {
        shiftOutMDI(0xFFFF_FFFF, 32)
        let command = UInt32(2) | UInt32(register) << 2 | UInt32(phy) << 7 | 1 << 12 | 1 << 14
        shiftOutMDI(command << 16 | UInt32(value), 32)
    }

    // MARK: Rings

    func receiveBuffer(_ index: Int) -> UInt64 { Layout.receiveBuffers + UInt64(index) * Layout.receiveStride }
    func transmitBuffer(_ index: Int) -> UInt64 { Layout.transmitBuffers + UInt64(index) * Layout.transmitStride }

    /// Programs a receive ring of `count` descriptors with buffers, hands `owned` of them (default all but one) to
    /// the chip, and writes RCTL.
    func setUpReceive(count: Int = 16, owned: Int? = nil, rctl: UInt32 = 0x0000_8002, rdtr: UInt32 = 0) throws {
        receiveCount = count
        for i in 0..<count {
            let at = Layout.receiveRing + UInt64(i) * 16
            try ram.storeLittleEndian(receiveBuffer(i), at: at)
            try ram.fill(0, count: 8, at: at + 8)
        }
        write(0x2800, UInt32(truncatingIfNeeded: Layout.receiveRing))
        write(0x2804, 0)
        write(0x2808, UInt32(count * 16))
        write(0x2810, 0)
        write(0x2820, rdtr)
        write(0x2818, UInt32(owned ?? (count - 1)))
        write(0x0100, rctl)
    }

    struct ReceivedDescriptor: Equatable {
        var length: Int
        var checksum: UInt16
        var status: UInt8
        var errors: UInt8
        var special: UInt16
    }

    func receiveDescriptor(_ index: Int) throws -> ReceivedDescriptor {
        let at = Layout.receiveRing + UInt64(index) * 16 + 8
        let bytes = try ram.load(at: at, count: 8)
        return ReceivedDescriptor(
            length: Int(bytes.load(littleEndian: UInt16.self, at: 0) ?? 0),
            checksum: bytes.load(littleEndian: UInt16.self, at: 2) ?? 0, status: bytes[4], errors: bytes[5],
            special: bytes.load(littleEndian: UInt16.self, at: 6) ?? 0)
    }

    /// The bytes of descriptor `index`'s buffer that the chip filled.
    func receivedBytes(_ index: Int) throws -> [UInt8] {
        try ram.load(at: receiveBuffer(index), count: try receiveDescriptor(index).length)
    }

    /// Delivers `frame` from the attachment and lets the card service its port.
    func deliver(_ frame: [UInt8]) {
        card.port.deliver(frame)
        card.service()
    }

    /// Programs a transmit ring of `count` descriptors and enables the transmitter (EN, PSP).
    func setUpTransmit(count: Int = 16, tctl: UInt32 = 0x0004_010A) {
        transmitCount = count
        transmitTail = 0
        write(0x3800, UInt32(truncatingIfNeeded: Layout.transmitRing))
        write(0x3804, 0)
        write(0x3808, UInt32(count * 16))
        write(0x3810, 0)
        write(0x3818, 0)
        write(0x0400, tctl)
    }

    /// Writes a raw descriptor at the driver's tail and advances the tail (without ringing the doorbell).
    func putDescriptor(buffer: UInt64, lower: UInt32, upper: UInt32) throws {
        let at = Layout.transmitRing + UInt64(transmitTail) * 16
        try ram.storeLittleEndian(buffer, at: at)
        try ram.storeLittleEndian(lower, at: at + 8)
        try ram.storeLittleEndian(upper, at: at + 12)
        transmitTail = (transmitTail + 1) % transmitCount
    }

    /// Places `data` in the transmit buffer of the current tail and adds a legacy descriptor for it.
    func queueLegacy(_ data: [UInt8], command: UInt8 = 0x0B, cso: UInt8 = 0, css: UInt8 = 0, special: UInt16 = 0)
        throws
    {
        try ram.store(data, at: transmitBuffer(transmitTail))
        try putDescriptor(
            buffer: transmitBuffer(transmitTail),
            lower: UInt32(data.count) | UInt32(cso) << 16 | UInt32(command) << 24,
            upper: UInt32(css) << 8 | UInt32(special) << 16)
    }

    /// Adds an extended data descriptor for `data`.
    func queueData(_ data: [UInt8], command: UInt8, options: UInt8, special: UInt16 = 0) throws {
        try ram.store(data, at: transmitBuffer(transmitTail))
        try putDescriptor(
            buffer: transmitBuffer(transmitTail),
            lower: UInt32(data.count) | 1 << 20 | UInt32(command | 0x20) << 24,
            upper: UInt32(options) << 8 | UInt32(special) << 16)
    }

    /// Adds a context descriptor.
    func queueContext(
        ipcss: Int, ipcso: Int, ipcse: Int, tucss: Int, tucso: Int, tucse: Int, payloadLength: Int,
        command: UInt8, headerLength: Int, mss: Int
    ) throws {
        let fields =
            UInt64(ipcss) | UInt64(ipcso) << 8 | UInt64(ipcse) << 16 | UInt64(tucss) << 32 | UInt64(tucso) << 40
            | UInt64(tucse) << 48
        try putDescriptor(
            buffer: fields, lower: UInt32(payloadLength) | UInt32(command | 0x20) << 24,
            upper: UInt32(headerLength) << 8 | UInt32(mss) << 16)
    }

    /// Rings the doorbell: TDT = the driver's tail.
    func ring() { write(0x3818, UInt32(transmitTail)) }

    /// The status byte of transmit descriptor `index`.
    func transmitStatus(_ index: Int) throws -> UInt8 {
        try ram.load(at: Layout.transmitRing + UInt64(index) * 16 + 12, count: 1)[0]
    }

    /// Every frame the card sent since the last call.
    func sentFrames() -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = wire.next() { frames.append(frame) }
        return frames
    }
}

// MARK: Frames and checksums

let peerAddress = MACAddress("02:00:00:00:00:02")!

/// A frame to `destination` from the peer with `length` bytes in all and a recognisable payload.
func makeFrame(to destination: MACAddress, length: Int = 64, etherType: UInt16 = 0x88B5, seed: UInt8 = 0) -> [UInt8] {
    destination.bytes + peerAddress.bytes + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)]
        + (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
}

/// The Ethernet CRC computed bit by bit (independent of the card's table-driven one), as the FCS bytes on the wire.
func frameCheckSequence(_ frame: [UInt8]) -> [UInt8] {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in frame {
        var bits = byte
        for _ in 0..<8 {
            let feedback = (crc ^ UInt32(bits)) & 1
            crc >>= 1
            if feedback != 0 { crc ^= 0xEDB8_8320 }
            bits >>= 1
        }
    }
    crc = ~crc
    return (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) }
}

/// The ones'-complement sum of 16-bit big-endian words, folded (not complemented).
func onesSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = 0
    while i + 1 < bytes.count {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

func be16(_ bytes: [UInt8], _ at: Int) -> UInt16 { bytes.bigEndian16(at: at) }
func be32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes.bigEndian32(at: at) }

/// An IPv4 TCP frame (Ethernet + 20-byte IP + 20-byte TCP + payload), with correct checksums unless told otherwise.
func makeTCPFrame(
    to destination: MACAddress = E1000Bench.mac, payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x18,
    identification: UInt16 = 0x1234, goodChecksums: Bool = true, proto: UInt8 = 6
) -> [UInt8] {
    let transportLength = (proto == 6 ? 20 : 8) + payload.count
    let total = 20 + transportLength
    var ip: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(identification >> 8), UInt8(identification & 0xFF),
        0x40, 0, 64, proto, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
    ]
    let ipSum = ~onesSum(ip)
    ip[10] = UInt8(ipSum >> 8)
    ip[11] = UInt8(ipSum & 0xFF)
    var transport: [UInt8]
    if proto == 6 {
        transport = [
            0x30, 0x39, 0x00, 0x50, UInt8(sequence >> 24), UInt8((sequence >> 16) & 0xFF),
            UInt8((sequence >> 8) & 0xFF), UInt8(sequence & 0xFF), 0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0,
        ]
    } else {
        transport = [0x30, 0x39, 0x00, 0x35, UInt8(transportLength >> 8), UInt8(transportLength & 0xFF), 0, 0]
    }
    transport += payload
    let pseudo = Array(ip[12..<20]) + [0, proto, UInt8(transportLength >> 8), UInt8(transportLength & 0xFF)]
    let sum = ~onesSum(pseudo + transport)
    let at = proto == 6 ? 16 : 6
    transport[at] = UInt8(sum >> 8)
    transport[at + 1] = UInt8(sum & 0xFF)
    if !goodChecksums { transport[at] ^= 0x55 }
    return destination.bytes + peerAddress.bytes + [0x08, 0x00] + ip + transport
}

/// Whether an IPv4 TCP/UDP frame's IP header and transport checksums verify.
func checksumsVerify(_ frame: [UInt8], ipOffset: Int = 14) -> (ip: Bool, transport: Bool) {
    let headerLength = Int(frame[ipOffset] & 0xF) * 4
    let ipHeader = Array(frame[ipOffset..<(ipOffset + headerLength)])
    let total = Int(be16(frame, ipOffset + 2))
    let proto = frame[ipOffset + 9]
    let transport = Array(frame[(ipOffset + headerLength)..<(ipOffset + total)])
    let pseudo =
        Array(frame[(ipOffset + 12)..<(ipOffset + 20)]) + [
            0, proto, UInt8(transport.count >> 8),
            UInt8(transport.count & 0xFF),
        ]
    return (onesSum(ipHeader) == 0xFFFF, onesSum(pseudo + transport) == 0xFFFF)
}
