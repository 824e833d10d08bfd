import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

/// The guest-memory layout the driver script uses (rings, buffers, init block).
typealias Layout = PCNetDriver.Layout

/// A PCnet card on the bench: the harness, Linux's pcnet32 played by ``PCNetDriver``, and direct access to registers
/// and descriptors for what the driver never does.
final class PCNetBench {
    let harness: CardHarness
    let driver: PCNetDriver

    var model: CardModel { harness.model }
    var card: any NetworkCard { harness.card }
    var ram: GuestRAM { harness.ram }
    var mac: MACAddress { harness.card.macAddress }
    var isAm79C973: Bool { harness.model == .am79c973 }

    /// A fresh card with its PCI function enabled (I/O, memory, bus master), nothing else touched.
    init(_ model: CardModel, ramSize: Int = 16 << 20) throws {
        harness = try CardHarness(model: model, ramSize: ramSize)
        driver = PCNetDriver(harness: harness)
        driver.enableDevice()
    }

    /// A card probed and opened as pcnet32 does it, with IDON acknowledged so nothing is pending and IENA set.
    static func running(
        _ model: CardModel, style: Int = 2, receiveRingLog2: Int = 5, transmitRingLog2: Int = 4, mode: UInt16 = 0,
        logicalAddressFilter: UInt64 = 0, receiveOwned: Int? = nil, ramSize: Int = 16 << 20
    ) throws -> PCNetBench {
        let bench = try PCNetBench(model, ramSize: ramSize)
        _ = try bench.driver.probe()
        try bench.driver.open(
            style: style, receiveRingLog2: receiveRingLog2, transmitRingLog2: transmitRingLog2, mode: mode,
            logicalAddressFilter: logicalAddressFilter, receiveOwned: receiveOwned)
        bench.acknowledge()
        return bench
    }

    // MARK: Registers

    func csr(_ index: Int) -> UInt16 { driver.readCSR(index) }
    func setCSR(_ index: Int, _ value: UInt16) { driver.writeCSR(index, value) }
    func bcr(_ index: Int) -> UInt16 { driver.readBCR(index) }
    func setBCR(_ index: Int, _ value: UInt16) { driver.writeBCR(index, value) }

    /// Reads CSR0 and writes back the interrupt flags it showed (clearing them), keeping IENA as it was.
    @discardableResult
    func acknowledge() -> UInt16 {
        let value = csr(0)
        setCSR(0, (value & 0x7F00) | (value & CSR0Bits.iena))
        return value
    }

    /// STOP.
    func stop() { setCSR(0, CSR0Bits.stop) }
    /// STRT with interrupts enabled, without INIT (rings and modes as the registers hold them).
    func start() { setCSR(0, CSR0Bits.strt | CSR0Bits.iena) }
    /// TDMD with interrupts enabled.
    func transmitDemand() { setCSR(0, CSR0Bits.tdmd | CSR0Bits.iena) }

    /// Sets CSR5.SPND and clears it again around `body`, as Linux's pcnet32_suspend/pcnet32_clr_suspend do.
    func suspended(_ body: () throws -> Void) rethrows {
        setCSR(5, csr(5) | 0x0001)
        try body()
        setCSR(5, csr(5) & ~0x0001)
    }

    /// The interrupt line now.
    var interrupt: Bool { harness.interruptLine.level }

    // MARK: Counters

    /// The card's counter `name`, or `nil` if it has none by that name.
    func counter(_ name: String) -> UInt64? { card.counters.first { $0.name == name }?.value }

    // MARK: Rings

    var receiveRing: DescriptorRing { DescriptorRing(ram: ram, base: Layout.receiveRing, style: driver.style) }
    var transmitRing: DescriptorRing { DescriptorRing(ram: ram, base: Layout.transmitRing, style: driver.style) }

    /// The receive buffer the driver gave descriptor `index`.
    func receiveBuffer(_ index: Int) -> UInt64 { Layout.receiveBuffers + UInt64(index) * Layout.bufferStride }
    /// The transmit buffer the driver uses for descriptor `index`.
    func transmitBuffer(_ index: Int) -> UInt64 { Layout.transmitBuffers + UInt64(index) * Layout.bufferStride }

    /// Places `frame` in transmit buffer `index` and hands descriptor `index` to the chip (OWN|STP|ENP and `extra`)
    /// without ringing the doorbell.
    func queueTransmit(_ frame: [UInt8], index: Int, status: UInt16 = 0x8300) throws {
        try ram.store(frame, at: transmitBuffer(index))
        try transmitRing.put(index, buffer: UInt32(transmitBuffer(index)), length: frame.count, status: status)
    }

    /// Every frame the card sent to its attachment since the last call.
    func sentFrames() -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = harness.transmitted.next() { frames.append(frame) }
        return frames
    }
}

/// CSR0 bit values, spelled out in the tests' own words.
enum CSR0Bits {
    static let initialize: UInt16 = 0x0001
    static let strt: UInt16 = 0x0002
    static let stop: UInt16 = 0x0004
    static let tdmd: UInt16 = 0x0008
    static let txon: UInt16 = 0x0010
    static let rxon: UInt16 = 0x0020
    static let iena: UInt16 = 0x0040
    static let intr: UInt16 = 0x0080
    static let idon: UInt16 = 0x0100
    static let tint: UInt16 = 0x0200
    static let rint: UInt16 = 0x0400
    static let merr: UInt16 = 0x0800
    static let miss: UInt16 = 0x1000
    static let cerr: UInt16 = 0x2000
    static let babl: UInt16 = 0x4000
    static let err: UInt16 = 0x8000
}

/// Descriptor status bits (the 16-bit status word; the 16-bit style keeps only its high byte).
enum StatusBits {
    static let own: UInt16 = 0x8000
    static let err: UInt16 = 0x4000
    static let addFCS: UInt16 = 0x2000
    static let ltint: UInt16 = 0x1000
    static let stp: UInt16 = 0x0200
    static let enp: UInt16 = 0x0100
    // Receive.
    static let fram: UInt16 = 0x2000
    static let oflo: UInt16 = 0x1000
    static let crc: UInt16 = 0x0800
    static let buff: UInt16 = 0x0400
    static let pam: UInt16 = 0x0040
    static let lafm: UInt16 = 0x0020
    static let bam: UInt16 = 0x0010
}

/// TMD2 error bits, in the 32-bit layout (the 16-bit style's TMD3 is the upper half).
enum TransmitErrorBits {
    static let buff: UInt32 = 1 << 31
    static let uflo: UInt32 = 1 << 30
    static let lcar: UInt32 = 1 << 27
}

/// One descriptor ring in guest RAM, read and written the way a driver does, in any software style.
struct DescriptorRing {
    let ram: GuestRAM
    let base: UInt64
    let style: Int

    var stride: UInt64 { style == 0 ? 8 : 16 }

    func address(_ index: Int) -> UInt64 { base + UInt64(index) * stride }

    /// The BCNT field for a buffer of `length` bytes: 12-bit two's complement with the ONES nibble set.
    static func byteCount(_ length: Int) -> UInt16 { UInt16(truncatingIfNeeded: -length) & 0x0FFF | 0xF000 }

    /// Writes a whole descriptor, the status word last.
    func put(_ index: Int, buffer: UInt32, length: Int, status: UInt16, misc: UInt32 = 0) throws {
        let at = address(index)
        let count = Self.byteCount(length)
        if style == 0 {
            try ram.storeLittleEndian(UInt16(truncatingIfNeeded: buffer), at: at)
            try ram.store([UInt8(truncatingIfNeeded: buffer >> 16)], at: at + 2)
            try ram.storeLittleEndian(count, at: at + 4)
            try ram.storeLittleEndian(UInt16(truncatingIfNeeded: misc), at: at + 6)
            try ram.store([UInt8(truncatingIfNeeded: status >> 8)], at: at + 3)
            return
        }
        try ram.storeLittleEndian(style == 3 ? misc : buffer, at: at)
        try ram.storeLittleEndian(count, at: at + 4)
        try ram.storeLittleEndian(style == 3 ? buffer : misc, at: at + 8)
        try ram.storeLittleEndian(status, at: at + 6)
    }

    /// The status word (the 16-bit style's status byte in the high half).
    func status(_ index: Int) throws -> UInt16 {
        if style == 0 { return UInt16(try ram.load(at: address(index) + 3, count: 1)[0]) << 8 }
        return try ram.loadLittleEndian(UInt16.self, at: address(index) + 6)
    }

    func isOwned(_ index: Int) throws -> Bool { try status(index) & StatusBits.own != 0 }

    /// The third word (TMD2/RMD2) in the 32-bit layout; the 16-bit style's fourth word in the upper half.
    private func misc(_ index: Int) throws -> UInt32 {
        switch style {
        case 0: return UInt32(try ram.loadLittleEndian(UInt16.self, at: address(index) + 6)) << 16
        case 3: return try ram.loadLittleEndian(UInt32.self, at: address(index))
        default: return try ram.loadLittleEndian(UInt32.self, at: address(index) + 8)
        }
    }

    /// The transmit error bits (TMD2, or TMD3 of the 16-bit style, in the 32-bit layout).
    func transmitErrors(_ index: Int) throws -> UInt32 { try misc(index) & 0xFC00_0000 }

    /// The receive message count (MCNT) of an ENP descriptor.
    func messageLength(_ index: Int) throws -> Int {
        if style == 0 { return Int(try ram.loadLittleEndian(UInt16.self, at: address(index) + 6) & 0x0FFF) }
        return Int(try misc(index) & 0x0FFF)
    }

    /// The buffer address as the descriptor holds it.
    func buffer(_ index: Int) throws -> UInt32 {
        switch style {
        case 0:
            let low = UInt32(try ram.loadLittleEndian(UInt16.self, at: address(index)))
            return low | UInt32(try ram.load(at: address(index) + 2, count: 1)[0]) << 16
        case 3: return try ram.loadLittleEndian(UInt32.self, at: address(index) + 8)
        default: return try ram.loadLittleEndian(UInt32.self, at: address(index))
        }
    }
}

// MARK: Frames and checksums

/// The Ethernet CRC register over `bytes` as Linux's `ether_crc_le` computes it (bit by bit, reflected polynomial,
/// initial all-ones, no final inversion): independent of the card's table-driven CRC.
func etherCRCLittleEndian(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        var bits = byte
        for _ in 0..<8 {
            let feedback = (crc ^ UInt32(bits)) & 1
            crc >>= 1
            if feedback != 0 { crc ^= 0xEDB8_8320 }
            bits >>= 1
        }
    }
    return crc
}

/// The logical address filter bit pcnet32_load_multicast sets for `address`: the top six bits of the CRC register.
func multicastHashBit(_ address: MACAddress) -> Int { Int(etherCRCLittleEndian(address.bytes) >> 26) }

/// The four FCS bytes of `frame`, as the wire carries them (least significant byte first).
func frameCheckSequence(_ frame: [UInt8]) -> [UInt8] {
    let fcs = ~etherCRCLittleEndian(frame)
    return (0..<4).map { UInt8(truncatingIfNeeded: fcs >> (8 * UInt32($0))) }
}

/// A frame to `destination` from the peer with a recognisable payload of `length` bytes in all.
func makeFrame(to destination: MACAddress, length: Int = 64, seed: UInt8 = 0) -> [UInt8] {
    destination.bytes + [0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]
        + (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ Int(seed)) }
}

let peerAddress = MACAddress("02:00:00:00:00:02")!
let multicastAddress = MACAddress("01:00:5e:00:00:fb")!
