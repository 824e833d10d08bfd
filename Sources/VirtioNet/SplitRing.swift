import NICCore

/// The split virtqueue format (virtio 1.2 §2.7).
///
/// | area | layout |
/// |---|---|
/// | descriptor table | `size` × {le64 addr, le32 len, le16 flags, le16 next} |
/// | available ring (driver area) | le16 flags, le16 idx, le16 ring[size], le16 used_event |
/// | used ring (device area) | le16 flags, le16 idx, {le32 id, le32 len}[size], le16 avail_event |
enum SplitLayout {
    static let availFlags = 0
    static let availIndex = 2
    static let availRing = 4
    static let usedIndex = 2
    static let usedRing = 4

    static func usedEvent(size: UInt16) -> Int { availRing + 2 * Int(size) }
    static func availEvent(size: UInt16) -> Int { usedRing + 8 * Int(size) }

    /// The legacy layout from one page frame: descriptors, then the available ring, then the used ring on the next
    /// 4096-byte boundary.
    static func legacyAreas(pageFrame: UInt32, size: UInt16) -> (descriptors: UInt64, driver: UInt64, device: UInt64) {
        let descriptors = UInt64(pageFrame) << 12
        let driver = descriptors + 16 * UInt64(size)
        let availEnd = driver + 6 + 2 * UInt64(size)
        let device = (availEnd + 4095) & ~4095
        return (descriptors, driver, device)
    }
}

extension Virtqueue {
    /// Pops one chain from a split ring.
    func popSplit(into chain: DescriptorChain) throws(VirtqueueError) -> Bool {
        let mask = size &- 1
        if availPosition == availShadow {
            let index = try load16(driverArea, SplitLayout.availIndex)
            guard index &- availPosition <= size else { throw .availableIndexTooFar }
            availShadow = index
            guard index != availPosition else { return false }
            guestMemoryFence(.acquire)
        } else if availShadow &- availPosition > size {
            // Rewound past what was read: re-read the index.
            throw .availableIndexTooFar
        }
        let head = try availEntry(availPosition, mask: mask)
        try walkSplit(head: head, into: chain)
        availPosition &+= 1
        return true
    }

    /// The available-ring entry at free-running index `position`, read ahead in runs up to the ring's end.
    @inline(__always)
    private func availEntry(_ position: UInt16, mask: UInt16) throws(VirtqueueError) -> UInt16 {
        let offset = position &- cacheBase
        if offset < cacheCount { return availCache[Int(offset)] }
        let slot = Int(position & mask)
        let waiting = Int(availShadow &- position)
        let run = max(1, min(waiting, Int(size) - slot, availCache.count))
        let at = try address(driverArea, plus: SplitLayout.availRing + 2 * slot)
        do {
            try availCache.withMutableBytes { (buffer) throws(DMAError) in
                try memory.read(at: at, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<2 * run]))
            }
        } catch { throw .memory(error) }
        for i in 0..<run { availCache[i] = UInt16(littleEndian: availCache[i]) }
        cacheBase = position
        cacheCount = UInt16(run)
        return availCache[0]
    }

    /// Walks the chain starting at descriptor `head`, following an indirect table if there is one.
    private func walkSplit(head: UInt16, into chain: DescriptorChain) throws(VirtqueueError) {
        guard head < size else { throw .headOutOfRange }
        chain.id = head
        chain.ringSlots = 1
        var index = head
        var walked = 0
        while true {
            walked += 1
            guard walked <= Int(size) else { throw .chainTooLong }
            let descriptor = try loadDescriptor(descriptorArea, Int(index))
            let flags = descriptor.word
            if flags & DescriptorFlags.indirect.mask != 0 {
                guard allowsIndirect, flags & DescriptorFlags.next.mask == 0, chain.count == 0 else {
                    throw .unexpectedIndirect
                }
                try walkSplitIndirect(descriptor, into: chain)
                return
            }
            try chain.append(
                address: descriptor.address, length: descriptor.length,
                writable: flags & DescriptorFlags.write.mask != 0)
            guard flags & DescriptorFlags.next.mask != 0 else { return }
            guard descriptor.last < size else { throw .nextOutOfRange }
            index = descriptor.last
        }
    }

    /// Walks an indirect table: at most its own length of descriptors, no nested tables.
    private func walkSplitIndirect(_ table: RawDescriptor, into chain: DescriptorChain) throws(VirtqueueError) {
        guard table.length != 0, table.length % 16 == 0 else { throw .badIndirectLength }
        let entries = Int(table.length / 16)
        guard entries <= maximumIndirectEntries else { throw .chainTooLong }
        var index = 0
        var walked = 0
        while true {
            walked += 1
            guard walked <= entries else { throw .chainTooLong }
            let descriptor = try loadDescriptor(table.address, index)
            let flags = descriptor.word
            guard flags & DescriptorFlags.indirect.mask == 0 else { throw .nestedIndirect }
            try chain.append(
                address: descriptor.address, length: descriptor.length,
                writable: flags & DescriptorFlags.write.mask != 0)
            guard flags & DescriptorFlags.next.mask != 0 else { return }
            guard Int(descriptor.last) < entries else { throw .nextOutOfRange }
            index = Int(descriptor.last)
        }
    }

    /// Writes the pending used entries (one DMA per contiguous run), then the used index; decides the interrupt.
    func flushSplit() throws(VirtqueueError) -> Bool {
        let mask = size &- 1
        var done = 0
        while done < pendingCount {
            let slot = Int((usedPosition &+ UInt16(truncatingIfNeeded: done)) & mask)
            let run = min(pendingCount - done, Int(size) - slot)
            for i in 0..<run {
                let element = pending[done + i]
                usedStaging[2 * i] = element.id.littleEndian
                usedStaging[2 * i + 1] = element.length.littleEndian
            }
            let at = try address(deviceArea, plus: SplitLayout.usedRing + 8 * slot)
            do {
                try usedStaging.withBytes { (buffer) throws(DMAError) in
                    try memory.write(at: at, from: UnsafeRawBufferPointer(rebasing: buffer[0..<8 * run]))
                }
            } catch { throw .memory(error) }
            done += run
        }
        let old = signalledUsed
        let new = usedPosition &+ UInt16(truncatingIfNeeded: pendingCount)
        usedPosition = new
        guestMemoryFence(.release)
        try store16(new, deviceArea, SplitLayout.usedIndex)
        guestMemoryFence(.full)
        if usesEventIndex {
            let event = try load16(driverArea, SplitLayout.usedEvent(size: size))
            let valid = signalledValid
            signalledValid = true
            signalledUsed = new
            return !valid || needsEvent(event, new: new, old: old)
        }
        signalledUsed = new
        return try load16(driverArea, SplitLayout.availFlags) & AvailableFlags.noInterrupt.mask == 0
    }

    /// Event index: asks to be notified once the driver makes anything past the device's position available.
    func publishAvailEvent() throws(VirtqueueError) {
        guard usesEventIndex else { return }
        try store16(availPosition, deviceArea, SplitLayout.availEvent(size: size))
        guestMemoryFence(.full)
    }

    /// Whether the driver has made chains available that the device has not taken (reads the index).
    package func hasAvailable() throws(VirtqueueError) -> Bool {
        if isPacked { return try packedHasAvailable() }
        if availShadow != availPosition { return true }
        let index = try load16(driverArea, SplitLayout.availIndex)
        guard index &- availPosition <= size else { throw .availableIndexTooFar }
        availShadow = index
        guestMemoryFence(.acquire)
        return index != availPosition
    }
}

/// The available ring's flags.
enum AvailableFlags: UInt16, RegisterBit {
    /// VIRTQ_AVAIL_F_NO_INTERRUPT: the driver asks for no used-buffer interrupts.
    case noInterrupt = 0
}
