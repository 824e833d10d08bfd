import NICCore
import VirtioNet

/// The benchmark's operations on a driver-side virtqueue, straight in guest memory and with no trace: standing
/// transmit chains made available in batches (as Linux's start_xmit with transmit interrupts suppressed, minus the
/// bookkeeping a real driver needs), and receive buffers given back as the device returns them. They use the queue's
/// own ring positions, so a ring brought up by ``VirtioDriver`` goes on from where the driver left it.
extension VirtioDriverQueue {
    /// Writes chain `n` = one descriptor for buffer `n` (at `buffers.base + n * buffers.stride`), `length` bytes,
    /// into every slot (split: avail entry `n` names descriptor `n`), so a batch later only moves the avail index
    /// (split) or rewrites slot words (packed).
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
            Self.store(availIndex, memory, Int(driverArea) + 2)
            return
        }
        // Slot n carries buffer n with ID n; the device overwrote length, ID and flags when it used the slot. The
        // positions live in locals for the loop (the timed region) and go back to the queue after it.
        var slot = nextSlot
        var wrap = availWrap
        for _ in 0..<count {
            let descriptor = Int(descriptorArea) + 16 * slot
            let flags = UInt64(wrap ? Self.availableBit : Self.usedBit)
            Self.store(buffers.base + UInt64(slot) * buffers.stride, memory, descriptor)
            Self.store(UInt64(length) | UInt64(slot) << 32 | flags << 48, memory, descriptor + 8)
            slot += 1
            if slot == size {
                slot = 0
                wrap.toggle()
            }
        }
        (nextSlot, availWrap) = (slot, wrap)
    }

    /// Gives every buffer the device returned since the last call back to it (the same buffer for the same
    /// descriptor or ID; `buffers[id]` for a packed ring), `length` bytes each; returns how many. At most a ring's
    /// worth, and nothing when the used index is out of reach.
    func recycleUsed(buffers: [UInt64], length: UInt32, memory: UnsafeMutableRawBufferPointer) -> Int {
        packed
            ? recyclePacked(buffers: buffers, length: length, memory: memory) : recycleSplit(memory: memory)
    }

    // The batch operations run inside the benchmark's timed region on the driver's own ring addresses, so they use
    // unchecked accesses, and the wrap bits as constants.
    private static let availableBit: UInt16 = 1 << 7
    private static let usedBit: UInt16 = 1 << 15

    @inline(__always)
    private static func store<T: FixedWidthInteger>(_ value: T, _ memory: UnsafeMutableRawBufferPointer, _ at: Int) {
        memory.storeBytes(of: value.littleEndian, toByteOffset: at, as: T.self)
    }

    @inline(__always)
    private static func load16(_ memory: UnsafeMutableRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: memory.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }

    private func recycleSplit(memory: UnsafeMutableRawBufferPointer) -> Int {
        let used = Self.load16(memory, Int(deviceArea) + 2)
        let returned = Int(used &- lastUsed)
        guard returned > 0, returned <= size else { return 0 }
        var next = lastUsed
        var avail = availIndex
        for _ in 0..<returned {
            let id = Self.load16(memory, Int(deviceArea) + 4 + 8 * (Int(next) % size))
            Self.store(id, memory, Int(driverArea) + 4 + 2 * (Int(avail) % size))
            next &+= 1
            avail &+= 1
        }
        (lastUsed, availIndex) = (next, avail)
        Self.store(avail, memory, Int(driverArea) + 2)
        return returned
    }

    private func recyclePacked(buffers: [UInt64], length: UInt32, memory: UnsafeMutableRawBufferPointer) -> Int {
        var (used, usedWrap) = (usedSlot, self.usedWrap)
        var (slot, wrap) = (nextSlot, availWrap)
        var returned = 0
        while returned < size {
            let entry = Int(descriptorArea) + 16 * used
            let flags = Self.load16(memory, entry + 14)
            guard (flags & Self.availableBit != 0) == usedWrap, (flags & Self.usedBit != 0) == usedWrap else { break }
            let id = Int(Self.load16(memory, entry + 12)) % size
            used += 1
            if used == size {
                used = 0
                usedWrap.toggle()
            }
            let descriptor = Int(descriptorArea) + 16 * slot
            Self.store(id < buffers.count ? buffers[id] : 0, memory, descriptor)
            Self.store(length, memory, descriptor + 8)
            Self.store(UInt16(id), memory, descriptor + 12)
            Self.store(2 | (wrap ? Self.availableBit : Self.usedBit), memory, descriptor + 14)
            slot += 1
            if slot == size {
                slot = 0
                wrap.toggle()
            }
            returned += 1
        }
        (usedSlot, self.usedWrap, nextSlot, availWrap) = (used, usedWrap, slot, wrap)
        return returned
    }
}
