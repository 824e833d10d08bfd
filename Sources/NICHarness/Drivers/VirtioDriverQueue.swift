import NICCore
import VirtioNet

/// Guest memory as a driver-side virtqueue writes and reads it: through the harness (every access a trace line) or
/// straight in a test's RAM.
public protocol VirtqueueMemory: AnyObject {
    /// Stores `bytes` at `address` as the guest.
    func store(_ bytes: [UInt8], at address: UInt64, comment: String?) throws(HarnessError)
    /// Loads `count` bytes at `address` as the guest.
    func load(at address: UInt64, count: Int, comment: String?) throws(HarnessError) -> [UInt8]
    /// Fills `count` bytes at `address` with `byte` as the guest.
    func fill(_ byte: UInt8, count: Int, at address: UInt64) throws(HarnessError)
}

extension CardHarness: VirtqueueMemory {}

extension GuestRAM: VirtqueueMemory {
    public func store(_ bytes: [UInt8], at address: UInt64, comment: String?) throws(HarnessError) {
        try store(bytes, at: address)
    }

    public func load(at address: UInt64, count: Int, comment: String?) throws(HarnessError) -> [UInt8] {
        try load(at: address, count: count)
    }
}

/// The driver's side of one virtqueue, as Linux's virtio_ring keeps it: the ring in guest RAM, and the free list,
/// ring positions and outstanding chains in the driver. Split rings (free list of descriptors, avail ring, used
/// ring) and packed rings (descriptors in ring order with AVAIL/USED wrap bits, buffer IDs) both; a token names a
/// chain until the device returns it: the head descriptor's index (split) or the buffer ID (packed).
///
/// The one driver-side ring of the package: ``VirtioDriver`` drives it through the harness (so a session records as
/// trace lines), the card's tests drive it in their RAM (with ``writeDescriptor(_:address:length:flags:next:)`` and
/// ``publish(_:)`` for hostile rings), and the benchmark drives its batch operations (`VirtioDriverQueue+Batch.swift`)
/// straight in guest memory.
package final class VirtioDriverQueue {
    /// One buffer of a chain: guest address, length, and whether the device writes it (the device's own type).
    package typealias Buffer = ChainSegment
    /// Descriptor flags and the packed ring's wrap bits, as the device reads them.
    typealias Flag = DescriptorFlags

    /// Where the ring lives.
    package let memory: any VirtqueueMemory
    /// The queue's index on the device (rx 2n, tx 2n+1, control after the pairs).
    package let index: Int
    package let size: Int
    package let packed: Bool
    package let descriptorArea: UInt64
    package let driverArea: UInt64
    package let deviceArea: UInt64

    /// Split: free descriptor indices. Packed: free buffer IDs.
    var free: [UInt16]
    /// Descriptors each outstanding token holds (split: the chain's indices; packed: its slot count in `counts`).
    var chains: [[UInt16]]
    var counts: [Int]
    var outstanding: [Bool]
    /// Descriptors not in use.
    package internal(set) var freeDescriptors: Int
    /// The split ring's avail index as last published.
    package internal(set) var availIndex: UInt16 = 0
    var lastUsed: UInt16 = 0
    var nextSlot = 0
    var availWrap = true
    var usedSlot = 0
    var usedWrap = true

    /// Bytes of guest RAM a ring of `size` entries takes at `base` (the legacy layout: descriptors and avail ring,
    /// then the used ring on the next 4096-byte boundary; packed: descriptors, then the two event areas).
    package static func footprint(size: Int, packed: Bool) -> Int {
        if packed { return 16 * size + 8 }
        return (16 * size + 6 + 2 * size + 4095) & ~4095 + 6 + 8 * size
    }

    /// Where the descriptor, driver and device areas of a ring of `size` entries at `base` are (see
    /// ``footprint(size:packed:)``).
    package static func areas(
        base: UInt64, size: Int, packed: Bool
    ) -> (descriptor: UInt64, driver: UInt64, device: UInt64) {
        let driver = base + 16 * UInt64(size)
        return (base, driver, packed ? driver + 4 : (driver + 6 + 2 * UInt64(size) + 4095) & ~4095)
    }

    /// A zeroed ring of `size` entries at `base` (4096-aligned), as vring_create_virtqueue allocates it.
    package convenience init(
        memory: any VirtqueueMemory, index: Int, size: Int, packed: Bool, base: UInt64
    ) throws(HarnessError) {
        try self.init(
            memory: memory, index: index, size: size, packed: packed,
            areas: Self.areas(base: base, size: size, packed: packed),
            zeroed: [(base, Self.footprint(size: size, packed: packed))])
    }

    /// A zeroed ring of `size` entries whose three areas the caller placed (the modern transport lets a driver put
    /// them anywhere).
    package convenience init(
        memory: any VirtqueueMemory, index: Int, size: Int, packed: Bool,
        areas: (descriptor: UInt64, driver: UInt64, device: UInt64)
    ) throws(HarnessError) {
        let events = packed ? 4 : 6
        try self.init(
            memory: memory, index: index, size: size, packed: packed, areas: areas,
            zeroed: [
                (areas.descriptor, 16 * size), (areas.driver, events + (packed ? 0 : 2 * size)),
                (areas.device, events + (packed ? 0 : 8 * size)),
            ])
    }

    private init(
        memory: any VirtqueueMemory, index: Int, size: Int, packed: Bool,
        areas: (descriptor: UInt64, driver: UInt64, device: UInt64), zeroed: [(UInt64, Int)]
    ) throws(HarnessError) {
        guard size > 0, size <= 0x8000 else { throw HarnessError("queue \(index): size \(size) is not 1...32768") }
        self.memory = memory
        self.index = index
        self.size = size
        self.packed = packed
        (descriptorArea, driverArea, deviceArea) = areas
        free = (0..<size).reversed().map { UInt16($0) }
        chains = [[UInt16]](repeating: [], count: size)
        counts = [Int](repeating: 0, count: size)
        outstanding = [Bool](repeating: false, count: size)
        freeDescriptors = size
        for (address, count) in zeroed { try memory.fill(0, count: count, at: address) }
    }

    /// 16 descriptor bytes: address, length, then two 16-bit words (split: flags, next; packed: ID, flags).
    static func descriptor(address: UInt64, length: UInt32, word: UInt16, flags: UInt16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = bytes.store(littleEndian: address, at: 0)
        _ = bytes.store(littleEndian: length, at: 8)
        _ = bytes.store(littleEndian: word, at: 12)
        _ = bytes.store(littleEndian: flags, at: 14)
        return bytes
    }

    func storeLE<T: FixedWidthInteger>(_ value: T, at address: UInt64, comment: String? = nil) throws(HarnessError) {
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<T>.size)
        _ = bytes.store(littleEndian: value, at: 0)
        try memory.store(bytes, at: address, comment: comment)
    }

    func loadLE<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(HarnessError) -> T {
        let bytes = try memory.load(at: address, count: MemoryLayout<T>.size, comment: nil)
        return bytes.load(littleEndian: T.self, at: 0) ?? 0
    }

    // MARK: Adding chains

    /// Makes a chain available (virtqueue_add): returns its token, or `nil` when the ring has no room.
    package func add(_ buffers: [Buffer]) throws(HarnessError) -> Int? {
        guard !buffers.isEmpty, buffers.count <= freeDescriptors, free.last != nil else { return nil }
        return packed ? try addPacked(buffers) : try addSplit(buffers)
    }

    /// Makes a chain available through an indirect table the driver writes at `table` (16 bytes a buffer): one ring
    /// descriptor for the whole chain, as Linux does when VIRTIO_RING_F_INDIRECT_DESC was negotiated.
    package func addIndirect(_ buffers: [Buffer], table: UInt64) throws(HarnessError) -> Int? {
        guard !buffers.isEmpty, buffers.count <= 0xFFFF / 16, freeDescriptors > 0, free.last != nil else { return nil }
        var entries: [UInt8] = []
        for (position, buffer) in buffers.enumerated() {
            let write = buffer.isWritable ? Flag.write.mask : 0
            // Split tables chain by `next`; a packed table's order is the chain.
            entries +=
                packed
                ? Self.descriptor(address: buffer.address, length: buffer.length, word: 0, flags: write)
                : Self.descriptor(
                    address: buffer.address, length: buffer.length,
                    word: (position == buffers.count - 1 ? 0 : Flag.next.mask) | write, flags: UInt16(position + 1))
        }
        try memory.store(entries, at: table, comment: "indirect table")
        let whole = [Buffer(address: table, length: UInt32(entries.count), isWritable: false)]
        return packed
            ? try addPacked(whole, headFlags: Flag.indirect.mask) : try addSplit(whole, headFlags: Flag.indirect.mask)
    }

    private func addSplit(_ buffers: [Buffer], headFlags: UInt16 = 0) throws(HarnessError) -> Int {
        var indices: [UInt16] = []
        for _ in buffers { indices.append(free.removeLast()) }
        for (position, buffer) in buffers.enumerated() {
            let last = position == buffers.count - 1
            let flags =
                (last ? 0 : Flag.next.mask) | (buffer.isWritable ? Flag.write.mask : 0)
                | (position == 0 ? headFlags : 0)
            let next = last ? 0 : indices[position + 1]
            try memory.store(
                Self.descriptor(address: buffer.address, length: buffer.length, word: flags, flags: next),
                at: descriptorArea + 16 * UInt64(indices[position]), comment: nil)
        }
        let head = Int(indices[0])
        chains[head] = indices
        outstanding[head] = true
        freeDescriptors -= buffers.count
        try publish(head)
        return head
    }

    private func addPacked(_ buffers: [Buffer], headFlags: UInt16 = 0) throws(HarnessError) -> Int {
        let id = free.removeLast()
        let headSlot = nextSlot
        var head: UInt16 = 0
        for (position, buffer) in buffers.enumerated() {
            let last = position == buffers.count - 1
            let flags =
                (last ? 0 : Flag.next.mask) | (buffer.isWritable ? Flag.write.mask : 0)
                | (availWrap ? Flag.available.mask : Flag.used.mask)
            let at = descriptorArea + 16 * UInt64(nextSlot)
            if position == 0 {
                head = flags | headFlags
                // The head's flags go last, so the device never sees a half-written chain.
                let bytes = Self.descriptor(address: buffer.address, length: buffer.length, word: id, flags: 0)
                try memory.store(Array(bytes.prefix(14)), at: at, comment: nil)
            } else {
                try memory.store(
                    Self.descriptor(address: buffer.address, length: buffer.length, word: id, flags: flags),
                    at: at, comment: nil)
            }
            advance(&nextSlot, &availWrap, by: 1)
        }
        try storeLE(head, at: descriptorArea + 16 * UInt64(headSlot) + 14, comment: "make id \(id) available")
        counts[Int(id)] = buffers.count
        outstanding[Int(id)] = true
        freeDescriptors -= buffers.count
        return Int(id)
    }

    /// Moves a packed ring position `by` slots, toggling its wrap counter when it passes the end.
    func advance(_ slot: inout Int, _ wrap: inout Bool, by count: Int) {
        slot += count
        while slot >= size {
            slot -= size
            wrap.toggle()
        }
    }

    /// Writes split descriptor `slot` as given, outside the free list: for tests that build rings a driver never
    /// would (loops, bad indirect tables, out-of-range `next`).
    package func writeDescriptor(
        _ slot: Int, address: UInt64, length: UInt32, flags: UInt16, next: UInt16
    ) throws(HarnessError) {
        try memory.store(
            Self.descriptor(address: address, length: length, word: flags, flags: next),
            at: descriptorArea + 16 * UInt64(slot), comment: nil)
    }

    /// Puts `head` in the split ring's avail ring and publishes the new avail index. A head the driver did not add
    /// through ``add(_:)`` counts as outstanding from here (hostile tests publish descriptors they wrote raw).
    package func publish(_ head: Int) throws(HarnessError) {
        if head >= 0, head < size { outstanding[head] = true }
        try storeLE(
            UInt16(truncatingIfNeeded: head), at: driverArea + 4 + 2 * UInt64(Int(availIndex) % size))
        availIndex &+= 1
        try storeLE(availIndex, at: driverArea + 2, comment: "avail idx \(availIndex)")
    }

    // MARK: Used chains

    /// The chains the device returned since the last call (virtqueue_get_buf), at most a ring's worth: token and the
    /// length the device wrote. A used entry naming no outstanding chain is the device's bug: an error.
    package func takeUsed() throws(HarnessError) -> [(token: Int, length: Int)] {
        packed ? try takeUsedPacked() : try takeUsedSplit()
    }

    private func takeUsedSplit() throws(HarnessError) -> [(token: Int, length: Int)] {
        let usedIndex = try self.usedIndex
        let pending = Int(usedIndex &- lastUsed)
        guard pending <= size else { throw HarnessError("queue \(index): used idx \(usedIndex) runs \(pending) ahead") }
        var entries: [(token: Int, length: Int)] = []
        for _ in 0..<pending {
            let entry = try loadLE(UInt64.self, at: deviceArea + 4 + 8 * UInt64(Int(lastUsed) % size))
            lastUsed &+= 1
            let head = Int(entry & 0xFFFF_FFFF)
            guard head < size, outstanding[head] else {
                throw HarnessError("queue \(index): used id \(head) was not available")
            }
            outstanding[head] = false
            free += chains[head].reversed()
            freeDescriptors += chains[head].count
            chains[head] = []
            entries.append((head, Int(entry >> 32)))
        }
        return entries
    }

    private func takeUsedPacked() throws(HarnessError) -> [(token: Int, length: Int)] {
        var entries: [(token: Int, length: Int)] = []
        for _ in 0..<size {
            let at = descriptorArea + 16 * UInt64(usedSlot)
            let flags = try loadLE(UInt16.self, at: at + 14)
            guard (flags & Flag.available.mask != 0) == usedWrap, (flags & Flag.used.mask != 0) == usedWrap else {
                break
            }
            let id = Int(try loadLE(UInt16.self, at: at + 12))
            guard id < size, outstanding[id] else {
                throw HarnessError("queue \(index): used id \(id) was not available")
            }
            let length = Int(try loadLE(UInt32.self, at: at + 8))
            outstanding[id] = false
            free.append(UInt16(id))
            freeDescriptors += counts[id]
            advance(&usedSlot, &usedWrap, by: max(counts[id], 1))
            entries.append((id, length))
        }
        return entries
    }

    // MARK: Notifications

    /// Whether the device wants a notification (split: VRING_USED_F_NO_NOTIFY clear; packed: device events not
    /// disabled).
    package func needsKick() throws(HarnessError) -> Bool {
        if packed { return try loadLE(UInt16.self, at: deviceArea + 2) & 0x3 != 1 }
        return try loadLE(UInt16.self, at: deviceArea) & 1 == 0
    }

    /// Asks the device not to interrupt for this queue (or to interrupt again).
    package func suppressInterrupts(_ suppress: Bool) throws(HarnessError) {
        try storeLE(UInt16(suppress ? 1 : 0), at: packed ? driverArea + 2 : driverArea)
    }

    /// The split ring's used index as the device last wrote it.
    package var usedIndex: UInt16 { get throws(HarnessError) { try loadLE(UInt16.self, at: deviceArea + 2) } }

    /// The split ring's avail event (VIRTIO_RING_F_EVENT_IDX): the avail index after which the device wants a kick.
    package var availEvent: UInt16 {
        get throws(HarnessError) { try loadLE(UInt16.self, at: deviceArea + 4 + 8 * UInt64(size)) }
    }

    /// Sets the split ring's used event: the used index after which the driver wants an interrupt.
    package func setUsedEvent(_ value: UInt16) throws(HarnessError) {
        try storeLE(value, at: driverArea + 4 + 2 * UInt64(size))
    }

    /// Packed driver event suppression: flags 0 enable, 1 disable, 2 at `offWrap`.
    package func setDriverEvent(flags: UInt16, offWrap: UInt16 = 0) throws(HarnessError) {
        try storeLE(offWrap, at: driverArea)
        try storeLE(flags, at: driverArea + 2)
    }

    /// The packed ring's device event suppression area.
    package var deviceEvent: (offWrap: UInt16, flags: UInt16) {
        get throws(HarnessError) {
            (try loadLE(UInt16.self, at: deviceArea), try loadLE(UInt16.self, at: deviceArea + 2))
        }
    }
}
