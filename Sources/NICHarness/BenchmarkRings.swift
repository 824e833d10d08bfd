import NICCards
import NICCore

/// The ring mechanics the benchmark drives straight in guest memory, per chip family: hand `count` prepared transmit
/// descriptors to the chip and ring the doorbell, or give `count` frames' worth of receive descriptors back.
protocol BenchmarkRings: AnyObject {
    var harness: CardHarness { get }
    /// Fills every transmit descriptor with `frame`.
    func prepareTransmit(_ frame: [UInt8]) throws(HarnessError)
    /// Hands `count` descriptors to the chip, rings the doorbell and acknowledges the interrupt.
    func transmit(_ count: Int, memory: UnsafeMutableRawBufferPointer)
    /// Returns the descriptors of `count` received frames to the chip and acknowledges the interrupt.
    func recycleReceive(_ count: Int, memory: UnsafeMutableRawBufferPointer)
}

/// Descriptors in each benchmark ring.
private let ringSize = 512

/// What one benchmark figure runs on: the card, its ring format (see ``Benchmark/variants(_:)``) and the frame size.
struct RingChoice {
    var model: CardModel
    var variant: String
    var frameBytes: Int
}

/// A card of the chosen model, probed and opened for frames of the chosen size, with its rings.
func makeBenchmarkRings(_ choice: RingChoice) throws(HarnessError) -> any BenchmarkRings {
    let harness = try CardHarness(model: choice.model)
    switch choice.model {
    case .am79c970a, .am79c973: return try PCNetRings(harness: harness)
    case .e82540em, .e82543gc, .e82545em: return try E1000Rings(harness: harness, jumbo: choice.frameBytes > 1514)
    case .virtio: return try VirtioRings(harness: harness, packed: choice.variant == "packed")
    }
}

/// PCnet rings (software style 2): OWN bits in the descriptors, TDMD through CSR0.
final class PCNetRings: BenchmarkRings {
    let harness: CardHarness
    private var nextTransmit = 0
    private var nextReceive = 0

    init(harness: CardHarness) throws(HarnessError) {
        self.harness = harness
        let driver = PCNetDriver(harness: harness)
        driver.enableDevice()
        _ = try driver.probe()
        try driver.open(style: 2, receiveRingLog2: 9, transmitRingLog2: 9)
    }

    func prepareTransmit(_ frame: [UInt8]) throws(HarnessError) {
        let ring = PCNetDriver.Layout.transmitRing
        for index in 0..<ringSize {
            let buffer = PCNetDriver.Layout.transmitBuffers + UInt64(index) * PCNetDriver.Layout.bufferStride
            try harness.ram.store(frame, at: buffer)
            try harness.ram.storeLittleEndian(UInt32(buffer), at: ring + UInt64(index) * 16)
            try harness.ram.storeLittleEndian(PCNetDriver.negative(frame.count), at: ring + UInt64(index) * 16 + 4)
        }
    }

    func transmit(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        // OWN | STP | ENP; TDMD with INEA kept, then the interrupt acknowledged.
        handBack(count, ring: PCNetDriver.Layout.transmitRing, status: 0x8300, next: &nextTransmit, memory: memory)
        harness.card.barWrite(0, offset: 0x10, width: 2, value: 0x0048)
        acknowledgeInterrupt()
    }

    func recycleReceive(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        handBack(count, ring: PCNetDriver.Layout.receiveRing, status: 0x8000, next: &nextReceive, memory: memory)
        acknowledgeInterrupt()
    }

    /// Gives `count` descriptors from `next` on back to the chip: their status word (bits 31:16 of the second
    /// double word, software style 2) set to `status`.
    private func handBack(
        _ count: Int, ring: UInt64, status: UInt16, next: inout Int, memory: UnsafeMutableRawBufferPointer
    ) {
        for _ in 0..<count {
            memory.store(littleEndian: status, at: Int(ring) + next * 16 + 6)
            next = (next + 1) % ringSize
        }
    }

    /// Clears CSR0's interrupt causes, as pcnet32's handler does.
    private func acknowledgeInterrupt() {
        let card = harness.card
        let csr0 = card.barRead(0, offset: 0x10, width: 2)
        card.barWrite(0, offset: 0x10, width: 2, value: csr0 & ~0x004F)
    }
}

/// Intel PRO/1000 rings: the chip owns the descriptors from the head to the tail, so the guest only moves TDT and RDT.
final class E1000Rings: BenchmarkRings {
    let harness: CardHarness
    /// 1024 receive descriptors: a batch of 256 jumbo frames takes three 4096-byte buffers each.
    static let receiveRingSize = 1024
    private var transmitTail = 0

    init(harness: CardHarness, jumbo: Bool) throws(HarnessError) {
        self.harness = harness
        let driver = E1000Driver(harness: harness)
        driver.enableDevice()
        _ = try driver.probe()
        try driver.open(receiveCount: Self.receiveRingSize, transmitCount: ringSize, jumbo: jumbo)
    }

    func prepareTransmit(_ frame: [UInt8]) throws(HarnessError) {
        let ring = E1000Driver.Layout.transmitRing
        for index in 0..<ringSize {
            let buffer = E1000Driver.Layout.transmitBuffers + UInt64(index) * E1000Driver.Layout.transmitStride
            try harness.ram.store(frame, at: buffer)
            try harness.ram.storeLittleEndian(buffer, at: ring + UInt64(index) * 16)
            // Legacy descriptor: length, CMD = EOP | IFCS | RS.
            try harness.ram.storeLittleEndian(UInt32(frame.count) | 0x0B00_0000, at: ring + UInt64(index) * 16 + 8)
        }
    }

    func transmit(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        transmitTail = (transmitTail + count) % ringSize
        let card = harness.card
        card.barWrite(0, offset: E1000Driver.Register.tdt, width: 4, value: UInt64(transmitTail))
        _ = card.barRead(0, offset: E1000Driver.Register.icr, width: 4)
    }

    func recycleReceive(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        let card = harness.card
        let head = card.barRead(0, offset: E1000Driver.Register.rdh, width: 4)
        let tail = (head + UInt64(Self.receiveRingSize) - 1) % UInt64(Self.receiveRingSize)
        card.barWrite(0, offset: E1000Driver.Register.rdt, width: 4, value: tail)
        _ = card.barRead(0, offset: E1000Driver.Register.icr, width: 4)
    }
}
