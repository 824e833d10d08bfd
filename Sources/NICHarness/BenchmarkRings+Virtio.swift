import NICCore

/// virtio-net rings, split or packed, brought up by ``VirtioDriver`` (modern, mergeable receive buffers, 256
/// entries) and then driven straight in guest memory: transmit chains are prepared once and made available in
/// batches with transmit interrupts suppressed, as Linux's start_xmit does; receive buffers go back as the device
/// returns them, with a doorbell per round.
final class VirtioRings: BenchmarkRings {
    let harness: CardHarness
    private let receive: VirtioDriverQueue
    private let transmit: VirtioDriverQueue
    private let receiveNotify: UInt64
    private let transmitNotify: UInt64
    private let isr: UInt64
    /// The receive buffer of each receive descriptor (split) or buffer ID (packed).
    private let receiveBuffers: [UInt64]
    private let receiveLength: UInt32
    private var transmitLength: UInt32 = 0

    init(harness: CardHarness, packed: Bool) throws(HarnessError) {
        self.harness = harness
        let driver = VirtioDriver(
            harness: harness, options: VirtioDriver.Options(packed: packed, mergeable: true, controlQueue: false))
        driver.enableDevice()
        _ = try driver.probe()
        try driver.open()
        guard let receive = driver.receiveQueue, let transmit = driver.transmitQueue, let modern = driver.modern,
            modern.notify.bar == 4, modern.isr.bar == 4
        else { throw HarnessError("virtio benchmark: the driver did not open the rings on BAR4") }
        self.receive = receive
        self.transmit = transmit
        receiveNotify = modern.notify.offset + driver.notifyOffsets[receive.index, default: 0]
        transmitNotify = modern.notify.offset + driver.notifyOffsets[transmit.index, default: 0]
        isr = modern.isr.offset
        receiveBuffers = driver.receiveBufferOf
        receiveLength = UInt32(driver.receiveBufferSize)
        try transmit.suppressInterrupts(true)
    }

    /// Transmit buffers: buffer `n` (the frame behind a zeroed 12-byte virtio-net header) at `base + n * stride`.
    private static let transmitBuffers = (
        base: VirtioDriver.Layout.transmitBuffers, stride: VirtioDriver.Layout.transmitStride
    )

    func prepareTransmit(_ frame: [UInt8]) throws(HarnessError) {
        transmitLength = UInt32(12 + frame.count)
        for slot in 0..<transmit.size {
            let buffer = Self.transmitBuffers.base + UInt64(slot) * Self.transmitBuffers.stride
            try harness.ram.store([UInt8](repeating: 0, count: 12) + frame, at: buffer)
        }
        let length = transmitLength
        let queue = transmit
        harness.ram.withUnsafeBytes { memory in
            queue.prepareStandingChains(buffers: Self.transmitBuffers, length: length, memory: memory)
        }
    }

    func transmit(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        transmit.publishStandingChains(count, buffers: Self.transmitBuffers, length: transmitLength, memory: memory)
        harness.card.barWrite(4, offset: transmitNotify, width: 2, value: UInt64(transmit.index))
    }

    func recycleReceive(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        let card = harness.card
        // Frames that found no buffer wait in the device: give buffers back and ring until nothing more arrives.
        for _ in 0...count {
            _ = card.barRead(4, offset: isr, width: 1)
            guard receive.recycleUsed(buffers: receiveBuffers, length: receiveLength, memory: memory) > 0 else {
                return
            }
            card.barWrite(4, offset: receiveNotify, width: 2, value: UInt64(receive.index))
        }
    }
}
