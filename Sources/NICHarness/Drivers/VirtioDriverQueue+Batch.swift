import NICCore
import VirtioNet

/// The benchmark's operations on a driver-side virtqueue, straight in guest memory and with no trace: standing
/// transmit chains made available in batches (as Linux's start_xmit with transmit interrupts suppressed, minus the
/// bookkeeping a real driver needs), and receive buffers given back as the device returns them. They use the queue's
/// own ring positions, so a ring brought up by ``VirtioDriver`` goes on from where the driver left it.
extension VirtioDriverQueue {
    /// Writes chain `n` = one descriptor for buffer `n` (at `buffers.base + n * buffers.stride`), `length` bytes,
    /// into every slot (split: avail entry `n`
    /// names descriptor `n`), so a batch later only moves the avail index (split) or rewrites slot words (packed).
    func prepareStandingChains(
        buffers: (base: UInt64, stride: UInt64), length: UInt32, memory: UnsafeMutableRawBufferPointer
    ) {
        for slot in 0..<size {
            let descriptor = Int(descriptorArea) + 16 * slot
            _ = memory.store(littleEndian: buffers.base + UInt64(slot) * buffers.stride, at: descriptor)
            _ = memory.store(littleEndian: length, at: descriptor + 8)
            if packed {
                _ = memory.store(littleEndian: UInt16(slot), at: descriptor + 12)
            } else {
                _ = memory.store(littleEndian: UInt32(0), at: descriptor + 12)
                _ = memory.store(littleEndian: UInt16(slot), at: Int(driverArea) + 4 + 2 * slot)
            }
        }
    }

    /// Makes the next `count` standing chains available (see ``prepareStandingChains(buffers:length:memory:)``).
    func publishStandingChains(
        _ count: Int, buffers: (base: UInt64, stride: UInt64), length: UInt32, memory: UnsafeMutableRawBufferPointer
    ) {
        guard packed else {
            // avail ring entry n names descriptor n, so a batch is one index store.
            availIndex &+= UInt16(truncatingIfNeeded: count)
            _ = memory.store(littleEndian: availIndex, at: Int(driverArea) + 2)
            return
        }
        // Slot n carries buffer n with ID n; the device overwrote length, ID and flags when it used the slot.
        for _ in 0..<count {
            let descriptor = Int(descriptorArea) + 16 * nextSlot
            let flags = UInt64(availWrap ? Flag.available.mask : Flag.used.mask)
            _ = memory.store(littleEndian: buffers.base + UInt64(nextSlot) * buffers.stride, at: descriptor)
            _ = memory.store(
                littleEndian: UInt64(length) | UInt64(nextSlot) << 32 | flags << 48, at: descriptor + 8)
            advance(&nextSlot, &availWrap, by: 1)
        }
    }

    /// Gives every buffer the device returned since the last call back to it (the same buffer for the same
    /// descriptor or ID; `buffers[id]` for a packed ring), `length` bytes each; returns how many. At most a ring's
    /// worth, and nothing when the used index is out of reach.
    func recycleUsed(buffers: [UInt64], length: UInt32, memory: UnsafeMutableRawBufferPointer) -> Int {
        packed
            ? recyclePacked(buffers: buffers, length: length, memory: memory) : recycleSplit(memory: memory)
    }

    private func recycleSplit(memory: UnsafeMutableRawBufferPointer) -> Int {
        let view = UnsafeRawBufferPointer(memory)
        let used = view.load(littleEndian: UInt16.self, at: Int(deviceArea) + 2) ?? lastUsed
        let returned = Int(used &- lastUsed)
        guard returned > 0, returned <= size else { return 0 }
        for _ in 0..<returned {
            let entry = Int(deviceArea) + 4 + 8 * (Int(lastUsed) % size)
            let id = view.load(littleEndian: UInt16.self, at: entry) ?? 0
            _ = memory.store(littleEndian: id, at: Int(driverArea) + 4 + 2 * (Int(availIndex) % size))
            lastUsed &+= 1
            availIndex &+= 1
        }
        _ = memory.store(littleEndian: availIndex, at: Int(driverArea) + 2)
        return returned
    }

    private func recyclePacked(buffers: [UInt64], length: UInt32, memory: UnsafeMutableRawBufferPointer) -> Int {
        let view = UnsafeRawBufferPointer(memory)
        var returned = 0
        while returned < size {
            let used = Int(descriptorArea) + 16 * usedSlot
            let flags = view.load(littleEndian: UInt16.self, at: used + 14) ?? 0
            guard (flags & Flag.available.mask != 0) == usedWrap, (flags & Flag.used.mask != 0) == usedWrap else {
                break
            }
            let id = Int(view.load(littleEndian: UInt16.self, at: used + 12) ?? 0) % size
            advance(&usedSlot, &usedWrap, by: 1)
            let slot = Int(descriptorArea) + 16 * nextSlot
            _ = memory.store(littleEndian: id < buffers.count ? buffers[id] : 0, at: slot)
            _ = memory.store(littleEndian: length, at: slot + 8)
            _ = memory.store(littleEndian: UInt16(id), at: slot + 12)
            _ = memory.store(
                littleEndian: Flag.write.mask | (availWrap ? Flag.available.mask : Flag.used.mask), at: slot + 14)
            advance(&nextSlot, &availWrap, by: 1)
            returned += 1
        }
        return returned
    }
}
