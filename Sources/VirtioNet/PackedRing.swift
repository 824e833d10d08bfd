import NICCore

/// The packed virtqueue format (virtio 1.2 §2.8, VIRTIO_F_RING_PACKED).
///
/// | area | layout |
/// |---|---|
/// | descriptor ring | `size` × {le64 addr, le32 len, le16 id, le16 flags (NEXT 0, WRITE 1, INDIRECT 2, AVAIL 7, USED 15)} |
/// | driver event suppression (driver area) | le16 off_wrap, le16 flags — read by the device before interrupting |
/// | device event suppression (device area) | le16 off_wrap, le16 flags — written by the device to pace doorbells |
///
/// Event flags: 0 enable, 1 disable, 2 only at the descriptor `off_wrap` names (needs VIRTIO_F_EVENT_IDX).
enum PackedLayout {
    static let eventOffWrap = 0
    static let eventFlags = 2
    static let eventEnable: UInt16 = 0
    static let eventDisable: UInt16 = 1
    static let eventDescriptor: UInt16 = 2
}

extension Virtqueue {
    @inline(__always)
    private func isAvailable(flags: UInt16, wrap: Bool) -> Bool {
        let avail = flags & DescriptorFlags.available.mask != 0
        let used = flags & DescriptorFlags.used.mask != 0
        return avail == wrap && used != wrap
    }

    func packedHasAvailable() throws(VirtqueueError) -> Bool {
        isAvailable(flags: try load16(descriptorArea, Int(availPosition) &* 16 &+ 14), wrap: availWrap)
    }

    /// Pops one chain from a packed ring: the descriptor at the device's position if the driver marked it available
    /// for this lap, plus the ones it chains with NEXT (at most the ring size).
    func popPacked(into chain: DescriptorChain) throws(VirtqueueError) -> Bool {
        guard availPosition < size else { throw .headOutOfRange }
        let headFlags = try load16(descriptorArea, Int(availPosition) &* 16 &+ 14)
        guard isAvailable(flags: headFlags, wrap: availWrap) else { return false }
        // The flags made the descriptor available: read it whole, once, after the fence.
        guestMemoryFence(.acquire)
        var descriptor = try loadDescriptor(descriptorArea, Int(availPosition))
        var position = availPosition
        var wrap = availWrap
        var walked = 0
        while true {
            walked += 1
            guard walked <= Int(size) else { throw .chainTooLong }
            let flags = descriptor.last
            if flags & DescriptorFlags.indirect.mask != 0 {
                guard allowsIndirect, flags & DescriptorFlags.next.mask == 0, chain.count == 0 else {
                    throw .unexpectedIndirect
                }
                try walkPackedIndirect(descriptor, into: chain)
                chain.id = descriptor.word
                break
            }
            try chain.append(
                address: descriptor.address, length: descriptor.length,
                writable: flags & DescriptorFlags.write.mask != 0)
            chain.id = descriptor.word
            guard flags & DescriptorFlags.next.mask != 0 else { break }
            position &+= 1
            if position >= size {
                position = 0
                wrap.toggle()
            }
            descriptor = try loadDescriptor(descriptorArea, Int(position))
        }
        position &+= 1
        if position >= size {
            position = 0
            wrap.toggle()
        }
        availPosition = position
        availWrap = wrap
        chain.ringSlots = UInt16(walked)
        return true
    }

    /// A packed indirect table: `length / 16` descriptors used in order, none of them indirect.
    private func walkPackedIndirect(_ table: RawDescriptor, into chain: DescriptorChain) throws(VirtqueueError) {
        guard table.length != 0, table.length % 16 == 0 else { throw .badIndirectLength }
        let entries = Int(table.length / 16)
        guard entries <= maximumIndirectEntries else { throw .chainTooLong }
        for index in 0..<entries {
            let descriptor = try loadDescriptor(table.address, index)
            guard descriptor.last & DescriptorFlags.indirect.mask == 0 else { throw .nestedIndirect }
            try chain.append(
                address: descriptor.address, length: descriptor.length,
                writable: descriptor.last & DescriptorFlags.write.mask != 0)
        }
    }

    /// Writes the used descriptors, the first one's flags last so the driver sees the batch at once; decides the
    /// interrupt from the driver event suppression structure.
    func flushPacked() throws(VirtqueueError) -> Bool {
        let oldPosition = signalledValid ? signalledUsed : usedPosition
        let oldWrap = signalledValid ? signalledUsedWrap : usedWrap
        let valid = signalledValid
        var position = usedPosition
        var wrap = usedWrap
        var firstFlags: (GuestAddress, UInt16)?
        for i in 0..<pendingCount {
            let element = pending[i]
            let base = try address(descriptorArea, plus: Int(position) &* 16)
            let flags: UInt16 = wrap ? (DescriptorFlags.available.mask | DescriptorFlags.used.mask) : 0
            var words: (UInt32, UInt16) = (
                element.length.littleEndian, UInt16(truncatingIfNeeded: element.id).littleEndian
            )
            do {
                try withUnsafeBytes(of: &words) { (buffer) throws(DMAError) in
                    try memory.write(
                        at: GuestAddress(base.rawValue &+ 8), from: UnsafeRawBufferPointer(rebasing: buffer[0..<6]))
                }
                let flagsAddress = GuestAddress(base.rawValue &+ 14)
                if i == 0 {
                    firstFlags = (flagsAddress, flags)
                } else {
                    try memory.writeLittleEndian(flags, at: flagsAddress)
                }
            } catch { throw .memory(error) }
            let advanced = Int(position) + Int(max(1, element.slots))
            if advanced >= Int(size) {
                position = UInt16(advanced - Int(size))
                wrap.toggle()
            } else {
                position = UInt16(advanced)
            }
        }
        if let (at, flags) = firstFlags {
            guestMemoryFence(.release)
            do { try memory.writeLittleEndian(flags, at: at) } catch { throw .memory(error) }
        }
        guestMemoryFence(.full)
        usedPosition = position
        usedWrap = wrap
        signalledValid = true
        signalledUsed = position
        signalledUsedWrap = wrap

        let eventFlags = try load16(driverArea, PackedLayout.eventFlags) & 3
        switch eventFlags {
        case PackedLayout.eventDisable: return false
        case PackedLayout.eventDescriptor where usesEventIndex:
            guard valid else { return true }
            let offWrap = try load16(driverArea, PackedLayout.eventOffWrap)
            let n = 2 * Int(size)
            func extended(_ position: UInt16, _ wrap: Bool) -> Int { Int(position) + (wrap ? 0 : Int(size)) }
            let event = extended(offWrap & 0x7FFF, offWrap & 0x8000 != 0) % n
            let new = extended(position, wrap)
            let old = extended(oldPosition, oldWrap)
            let distance = ((new - old) % n + n) % n
            let sinceEvent = ((new - event - 1) % n + n) % n
            return sinceEvent < distance
        default: return true
        }
    }

    /// Tells the driver when to ring: at the device's next position (event index) or always.
    func publishPackedDeviceEvent() throws(VirtqueueError) {
        if usesEventIndex {
            let offWrap = availPosition | (availWrap ? 0x8000 : 0)
            try store16(offWrap, deviceArea, PackedLayout.eventOffWrap)
            try store16(PackedLayout.eventDescriptor, deviceArea, PackedLayout.eventFlags)
        } else {
            try store16(PackedLayout.eventEnable, deviceArea, PackedLayout.eventFlags)
        }
        guestMemoryFence(.full)
    }
}
