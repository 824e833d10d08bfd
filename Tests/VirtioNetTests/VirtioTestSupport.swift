import NICCore
import NICHarness
import Testing

@testable import VirtioNet

/// A virtio-net card on the bench with the test playing the driver: PCI config, both interfaces, rings in guest RAM.
final class VirtioBench {
    let ram: GuestRAM
    let clock = ManualClock()
    let line = RecordingInterruptLine()
    let msix = RecordingMSIX()
    let recorder = TransmitRecorder()
    let card: VirtioNetCard
    let mac = MACAddress("52:54:00:12:34:56")!
    /// Where the modern BAR and the MSI-X BAR are mapped (outside RAM).
    static let modernBase: UInt64 = 0xFE00_0000
    static let msixBase: UInt64 = 0xFEB0_0000
    private var nextFree: UInt64 = 0x10_0000

    init(pairs: Int = 1, queueSize: Int = 256, ramSize: Int = 16 << 20, attach: Bool = true) throws {
        ram = try GuestRAM(size: ramSize)
        card = VirtioNetCard(
            macAddress: mac,
            environment: CardEnvironment(memory: ram, interruptLine: line, msix: msix, clock: clock),
            queuePairs: pairs, queueSize: queueSize)
        if attach { card.port.attach(recorder) }
        card.service()
        card.configWrite(offset: 0x10, width: 4, value: 0xC001)  // BAR0 I/O
        card.configWrite(offset: 0x14, width: 4, value: UInt32(Self.msixBase))
        card.configWrite(offset: 0x20, width: 4, value: UInt32(Self.modernBase))
        card.configWrite(offset: 0x24, width: 4, value: 0)
        card.configWrite(offset: 0x04, width: 2, value: 0x0007)
    }

    // MARK: Guest memory

    /// `count` bytes of guest RAM, aligned to `alignment`, never handed out twice.
    func allocate(_ count: Int, alignment: UInt64 = 4096) -> UInt64 {
        let start = (nextFree + alignment - 1) & ~(alignment - 1)
        nextFree = start + UInt64(max(count, 1))
        return start
    }

    func store(_ bytes: [UInt8], at address: UInt64) { try! ram.store(bytes, at: address) }
    func load(_ address: UInt64, _ count: Int) -> [UInt8] { try! ram.load(at: address, count: count) }
    func store16(_ value: UInt16, at address: UInt64) { try! ram.storeLittleEndian(value, at: address) }
    func store32(_ value: UInt32, at address: UInt64) { try! ram.storeLittleEndian(value, at: address) }
    func store64(_ value: UInt64, at address: UInt64) { try! ram.storeLittleEndian(value, at: address) }
    func load16(_ address: UInt64) -> UInt16 { try! ram.loadLittleEndian(UInt16.self, at: address) }
    func load32(_ address: UInt64) -> UInt32 { try! ram.loadLittleEndian(UInt32.self, at: address) }

    // MARK: Registers

    func modernRead(_ offset: UInt64, _ width: Int) -> UInt64 { card.barRead(4, offset: offset, width: width) }
    func modernWrite(_ offset: UInt64, _ width: Int, _ value: UInt64) {
        card.barWrite(4, offset: offset, width: width, value: value)
    }
    func legacyRead(_ offset: UInt64, _ width: Int) -> UInt64 { card.barRead(0, offset: offset, width: width) }
    func legacyWrite(_ offset: UInt64, _ width: Int, _ value: UInt64) {
        card.barWrite(0, offset: offset, width: width, value: value)
    }

    /// The virtio vendor capabilities found by walking the list from 0x34: type → (bar, offset, length, extra).
    func virtioCapabilities() -> [UInt8: (bar: Int, offset: UInt64, length: UInt64, capOffset: Int)] {
        var found: [UInt8: (bar: Int, offset: UInt64, length: UInt64, capOffset: Int)] = [:]
        var pointer = Int(card.configRead(offset: 0x34, width: 1))
        var steps = 0
        while pointer != 0, steps < 48 {
            steps += 1
            let id = card.configRead(offset: pointer, width: 1)
            if id == 0x09 {
                let type = UInt8(card.configRead(offset: pointer + 3, width: 1))
                found[type] = (
                    Int(card.configRead(offset: pointer + 4, width: 1)),
                    UInt64(card.configRead(offset: pointer + 8, width: 4)),
                    UInt64(card.configRead(offset: pointer + 12, width: 4)), pointer
                )
            }
            pointer = Int(card.configRead(offset: pointer + 1, width: 1))
        }
        return found
    }

    /// The MSI-X capability's offset, found by walking the list.
    func msixCapability() -> Int? {
        var pointer = Int(card.configRead(offset: 0x34, width: 1))
        while pointer != 0 {
            if card.configRead(offset: pointer, width: 1) == 0x11 { return pointer }
            pointer = Int(card.configRead(offset: pointer + 1, width: 1))
        }
        return nil
    }

    /// Enables MSI-X and programs every vector unmasked (address 0xFEE00000, data = vector).
    func enableMSIX() {
        let cap = msixCapability()!
        for vector in 0..<(2 * card.maximumQueuePairs + 2) {
            let base = UInt64(16 * vector)
            card.barWrite(1, offset: base, width: 4, value: 0xFEE0_0000)
            card.barWrite(1, offset: base + 4, width: 4, value: 0)
            card.barWrite(1, offset: base + 8, width: 4, value: UInt64(vector))
            card.barWrite(1, offset: base + 12, width: 4, value: 0)
        }
        card.configWrite(offset: cap + 2, width: 2, value: 0x8000)
    }

    // MARK: Modern driver

    var status: UInt8 { UInt8(modernRead(0x14, 1)) }

    /// ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; returns whether the device kept FEATURES_OK.
    @discardableResult
    func negotiateModern(_ features: VirtioFeatures) -> Bool {
        modernWrite(0x14, 1, 0)
        modernWrite(0x14, 1, 1)
        modernWrite(0x14, 1, 3)
        for select in 0..<2 {
            modernWrite(0x08, 4, UInt64(select))
            modernWrite(0x0C, 4, (features.rawValue >> (32 * UInt64(select))) & 0xFFFF_FFFF)
        }
        modernWrite(0x14, 1, 0x0B)
        return status & 0x08 != 0
    }

    /// The device's 64-bit feature word through the modern interface.
    func modernDeviceFeatures() -> VirtioFeatures {
        modernWrite(0x00, 4, 0)
        let low = modernRead(0x04, 4)
        modernWrite(0x00, 4, 1)
        let high = modernRead(0x04, 4)
        return VirtioFeatures(rawValue: high << 32 | low)
    }

    /// Programs queue `index` with a fresh ring of `size` entries and enables it.
    func setupModernQueue(_ index: Int, size: Int, packed: Bool = false, vector: UInt16? = nil) -> VirtioDriverQueue {
        modernWrite(0x16, 2, UInt64(index))
        modernWrite(0x18, 2, UInt64(size))
        if let vector { modernWrite(0x1A, 2, UInt64(vector)) }
        let ring = VirtioDriverQueue(bench: self, index: index, size: size, packed: packed)
        // The driver writes 64-bit addresses as two 32-bit halves, as Linux's vp_iowrite64_twopart does.
        for (offset, address) in [(0x20, ring.descriptorArea), (0x28, ring.driverArea), (0x30, ring.deviceArea)] {
            modernWrite(UInt64(offset), 4, address & 0xFFFF_FFFF)
            modernWrite(UInt64(offset + 4), 4, address >> 32)
        }
        modernWrite(0x1C, 2, 1)
        return ring
    }

    func driverOK() { modernWrite(0x14, 1, 0x0F) }

    func notifyModern(_ queue: Int) { modernWrite(0x3000 + 4 * UInt64(queue), 2, UInt64(queue)) }

    /// A running modern device with one pair of split (or packed) rings and, with CTRL_VQ, the control queue.
    func startModern(
        _ features: VirtioFeatures, size: Int = 64, packed: Bool = false
    ) -> (rx: VirtioDriverQueue, tx: VirtioDriverQueue, control: VirtioDriverQueue?) {
        var features = features
        features.insert(.version1)
        if packed { features.insert(.packedRing) }
        let accepted = negotiateModern(features)
        precondition(accepted, "features refused")
        let rx = setupModernQueue(0, size: size, packed: packed)
        let tx = setupModernQueue(1, size: size, packed: packed)
        var control: VirtioDriverQueue?
        if features.contains(.controlQueue) {
            let index = features.contains(.multiqueue) ? 2 * card.maximumQueuePairs : 2
            control = setupModernQueue(index, size: 16, packed: packed)
        }
        driverOK()
        return (rx, tx, control)
    }

    // MARK: Legacy driver

    /// A running legacy device: features written through BAR0, rings by page frame number.
    func startLegacy(_ features: UInt32) -> (rx: VirtioDriverQueue, tx: VirtioDriverQueue) {
        legacyWrite(0x12, 1, 0)
        legacyWrite(0x12, 1, 1)
        legacyWrite(0x12, 1, 3)
        legacyWrite(0x04, 4, UInt64(features))
        let rx = setupLegacyQueue(0)
        let tx = setupLegacyQueue(1)
        legacyWrite(0x12, 1, 7)
        return (rx, tx)
    }

    func setupLegacyQueue(_ index: Int) -> VirtioDriverQueue {
        legacyWrite(0x0E, 2, UInt64(index))
        let size = Int(legacyRead(0x0C, 2))
        let ring = VirtioDriverQueue(bench: self, index: index, size: size, legacy: true)
        legacyWrite(0x08, 4, ring.descriptorArea >> 12)
        return ring
    }

    // MARK: Frames and counters

    func counter(_ name: String) -> UInt64 {
        guard let value = card.counters.first(where: { $0.name == name })?.value else {
            Issue.record("no counter \(name)")
            return 0
        }
        return value
    }

    func sentFrames() -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = recorder.next() { frames.append(frame) }
        return frames
    }

    /// Delivers `frame` from the attachment and lets the card drain its port.
    func receive(_ frame: [UInt8], metadata: FrameMetadata = .none) {
        card.port.deliver(frame, metadata: metadata)
        card.service()
    }

    var needsReset: Bool { card.status.contains(.needsReset) }
}

/// The card's tests drive their rings with the package's one driver-side virtqueue (``VirtioDriverQueue``) in the
/// bench's RAM; these are their shorthands: buffers as tuples, chains that must fit, memory errors as test failures.
extension VirtioDriverQueue {
    /// A split or packed ring of `size` entries for queue `index`, its three areas allocated apart (as the modern
    /// transport allows) or, for the legacy transport, in one block by page frame.
    convenience init(bench: VirtioBench, index: Int, size: Int, packed: Bool = false, legacy: Bool = false) {
        if legacy {
            let base = bench.allocate(Self.footprint(size: size, packed: false))
            try! self.init(memory: bench.ram, index: index, size: size, packed: false, base: base)
        } else {
            let areas = (
                bench.allocate(16 * size), bench.allocate(packed ? 4 : 6 + 2 * size),
                bench.allocate(packed ? 4 : 6 + 8 * size)
            )
            try! self.init(memory: bench.ram, index: index, size: size, packed: packed, areas: areas)
        }
    }

    /// Makes a chain of buffers available (without notifying); returns its token. The ring must have room.
    @discardableResult
    func add(_ buffers: [(address: UInt64, length: UInt32, writable: Bool)]) -> Int {
        let chain = buffers.map { Buffer(address: $0.address, length: $0.length, isWritable: $0.writable) }
        guard let token = try! add(chain) else {
            fatalError("the test's ring has no room for \(buffers.count) buffers")
        }
        return token
    }

    /// Makes an indirect chain available, its table at `table`; returns its token. The ring must have room.
    @discardableResult
    func addIndirect(_ buffers: [(address: UInt64, length: UInt32, writable: Bool)], table: UInt64) -> Int {
        let chain = buffers.map { Buffer(address: $0.address, length: $0.length, isWritable: $0.writable) }
        guard let token = try! addIndirect(chain, table: table) else { fatalError("the test's ring has no room") }
        return token
    }

    /// The used entries the device returned since the last call; a used entry naming no chain the test made
    /// available is recorded as a failure.
    func used() -> [(id: Int, length: Int)] {
        do throws(HarnessError) {
            return try takeUsed().map { ($0.token, $0.length) }
        } catch {
            Issue.record("\(error)")
            return []
        }
    }
}

// MARK: Frames

let peerMAC = MACAddress("02:00:00:00:00:02")!

/// An Ethernet frame to `destination` with a recognisable payload, `length` bytes in all.
func makeFrame(to destination: MACAddress, length: Int = 64, seed: UInt8 = 0, etherType: UInt16 = 0x0800) -> [UInt8] {
    destination.bytes + peerMAC.bytes + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)]
        + (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
}

/// The Internet checksum computed independently of NICCore: a plain ones'-complement sum of 16-bit words.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < bytes.count {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

func be16(_ bytes: [UInt8], _ at: Int) -> Int { Int(bytes.bigEndian16(at: at)) }
func be32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes.bigEndian32(at: at) }

/// A 12- (or 10-) byte virtio-net header.
func netHeader(
    flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0, checksumStart: UInt16 = 0,
    checksumOffset: UInt16 = 0, buffers: UInt16 = 0, length: Int = 12
) -> [UInt8] {
    VirtioNetHeader(
        flags: flags, gsoType: gsoType, headerLength: headerLength, gsoSize: gsoSize, checksumStart: checksumStart,
        checksumOffset: checksumOffset, bufferCount: buffers
    ).bytes(length: length)
}
