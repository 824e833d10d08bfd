import NICCore

/// virtio-net rings, split or packed, brought up by ``VirtioDriver`` (modern, mergeable receive buffers, 256
/// entries) and then driven straight in guest memory: transmit chains are prepared once and made available in
/// batches with transmit interrupts suppressed, as Linux's start_xmit does; receive buffers go back as the device
/// returns them, with a doorbell per round.
final class VirtioRings: BenchmarkRings {
    let harness: CardHarness
    private let packed: Bool
    private let receive: VirtioDriverQueue
    private let transmit: VirtioDriverQueue
    private let receiveNotify: UInt64
    private let transmitNotify: UInt64
    private let isr: UInt64
    /// The receive buffer of each receive descriptor (split) or buffer ID (packed).
    private var receiveBuffers: [UInt64]
    private let receiveLength: UInt32
    private var transmitIndex: UInt16 = 0
    private var transmitLength: UInt32 = 0
    private var transmitSlot = 0
    private var transmitWrap = true
    private var receiveAvailIndex: UInt16
    private var receiveLastUsed: UInt16 = 0
    private var receiveAvailSlot: Int
    private var receiveAvailWrap = true
    private var receiveUsedSlot = 0
    private var receiveUsedWrap = true

    init(harness: CardHarness, packed: Bool) throws(HarnessError) {
        self.harness = harness
        self.packed = packed
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
        // The driver filled the receive ring: every descriptor (split) or slot (packed) holds a buffer.
        receiveAvailIndex = UInt16(truncatingIfNeeded: receive.size)
        receiveAvailSlot = 0
        receiveAvailWrap = false
        try transmit.suppressInterrupts(true)
    }

    func prepareTransmit(_ frame: [UInt8]) throws(HarnessError) {
        let ram = harness.ram
        let length = UInt32(12 + frame.count)
        transmitLength = length
        for index in 0..<transmit.size {
            let buffer = VirtioDriver.Layout.transmitBuffers + UInt64(index) * VirtioDriver.Layout.transmitStride
            try ram.store([UInt8](repeating: 0, count: 12) + frame, at: buffer)
            let descriptor = transmit.descriptorArea + 16 * UInt64(index)
            try ram.storeLittleEndian(buffer, at: descriptor)
            try ram.storeLittleEndian(length, at: descriptor + 8)
            if packed {
                try ram.storeLittleEndian(UInt16(index), at: descriptor + 12)
            } else {
                try ram.storeLittleEndian(UInt32(0), at: descriptor + 12)
                try ram.storeLittleEndian(UInt16(index), at: transmit.driverArea + 4 + 2 * UInt64(index))
            }
        }
    }

    private func store16(_ value: UInt16, _ memory: UnsafeMutableRawBufferPointer, _ address: UInt64) {
        memory.storeBytes(of: value.littleEndian, toByteOffset: Int(address), as: UInt16.self)
    }

    private func load16(_ memory: UnsafeMutableRawBufferPointer, _ address: UInt64) -> UInt16 {
        UInt16(littleEndian: memory.loadUnaligned(fromByteOffset: Int(address), as: UInt16.self))
    }

    func transmit(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        if packed {
            // Slot n carries buffer n with ID n; the device overwrote length, ID and flags when it used the slot.
            for _ in 0..<count {
                let flags: UInt64 = transmitWrap ? 0x0080 : 0x8000
                let descriptor = Int(transmit.descriptorArea) + 16 * transmitSlot
                let buffer =
                    VirtioDriver.Layout.transmitBuffers + UInt64(transmitSlot) * VirtioDriver.Layout.transmitStride
                memory.storeBytes(of: buffer.littleEndian, toByteOffset: descriptor, as: UInt64.self)
                let word = UInt64(transmitLength) | UInt64(transmitSlot) << 32 | flags << 48
                memory.storeBytes(of: word.littleEndian, toByteOffset: descriptor + 8, as: UInt64.self)
                transmitSlot += 1
                if transmitSlot == transmit.size {
                    transmitSlot = 0
                    transmitWrap.toggle()
                }
            }
        } else {
            // avail ring entry n names descriptor n, so a batch is one index store.
            transmitIndex &+= UInt16(truncatingIfNeeded: count)
            store16(transmitIndex, memory, transmit.driverArea + 2)
        }
        harness.card.barWrite(4, offset: transmitNotify, width: 2, value: UInt64(transmit.index))
    }

    func recycleReceive(_ count: Int, memory: UnsafeMutableRawBufferPointer) {
        let card = harness.card
        // Frames that found no buffer wait in the device: give buffers back and ring until nothing more arrives.
        for _ in 0...count {
            _ = card.barRead(4, offset: isr, width: 1)
            let returned = packed ? recyclePacked(memory) : recycleSplit(memory)
            guard returned > 0 else { return }
            card.barWrite(4, offset: receiveNotify, width: 2, value: UInt64(receive.index))
        }
    }

    private func recycleSplit(_ memory: UnsafeMutableRawBufferPointer) -> Int {
        let used = load16(memory, receive.deviceArea + 2)
        let returned = Int(used &- receiveLastUsed)
        guard returned > 0, returned <= receive.size else { return 0 }
        for _ in 0..<returned {
            let entry = receive.deviceArea + 4 + 8 * UInt64(Int(receiveLastUsed) % receive.size)
            let id = load16(memory, entry)
            store16(id, memory, receive.driverArea + 4 + 2 * UInt64(Int(receiveAvailIndex) % receive.size))
            receiveLastUsed &+= 1
            receiveAvailIndex &+= 1
        }
        store16(receiveAvailIndex, memory, receive.driverArea + 2)
        return returned
    }

    private func recyclePacked(_ memory: UnsafeMutableRawBufferPointer) -> Int {
        var returned = 0
        while returned < receive.size {
            let used = receive.descriptorArea + 16 * UInt64(receiveUsedSlot)
            let flags = load16(memory, used + 14)
            guard (flags & 0x0080 != 0) == receiveUsedWrap, (flags & 0x8000 != 0) == receiveUsedWrap else { break }
            let id = Int(load16(memory, used + 12)) % receive.size
            receiveUsedSlot += 1
            if receiveUsedSlot == receive.size {
                receiveUsedSlot = 0
                receiveUsedWrap.toggle()
            }
            let slot = receive.descriptorArea + 16 * UInt64(receiveAvailSlot)
            memory.storeBytes(of: receiveBuffers[id].littleEndian, toByteOffset: Int(slot), as: UInt64.self)
            memory.storeBytes(of: receiveLength.littleEndian, toByteOffset: Int(slot) + 8, as: UInt32.self)
            store16(UInt16(id), memory, slot + 12)
            store16(receiveAvailWrap ? 0x0082 : 0x8002, memory, slot + 14)
            receiveAvailSlot += 1
            if receiveAvailSlot == receive.size {
                receiveAvailSlot = 0
                receiveAvailWrap.toggle()
            }
            returned += 1
        }
        return returned
    }
}
