import NICCore

/// The driver's side of one virtqueue, as Linux's virtio_ring keeps it: the ring in guest RAM, written and read
/// through the harness (so a session records as trace lines), and the free list, ring positions and outstanding
/// chains in the driver. Split rings (free list of descriptors, avail ring, used ring) and packed rings (descriptors
/// in ring order with AVAIL/USED wrap bits, buffer IDs) both; a token names a chain until the device returns it:
/// the head descriptor's index (split) or the buffer ID (packed).
final class VirtioDriverQueue {
    /// One buffer of a chain: guest address, length, and whether the device writes it.
    struct Buffer {
        var address: UInt64
        var length: UInt32
        var writable: Bool
    }

    let harness: CardHarness
    /// The queue's index on the device (rx 2n, tx 2n+1, control after the pairs).
    let index: Int
    let size: Int
    let packed: Bool
    let descriptorArea: UInt64
    let driverArea: UInt64
    let deviceArea: UInt64

    /// Split: free descriptor indices. Packed: free buffer IDs.
    private var free: [UInt16]
    /// Descriptors each outstanding token holds (split: the chain's indices; packed: its slot count in `counts`).
    private var chains: [[UInt16]]
    private var counts: [Int]
    private var outstanding: [Bool]
    /// Descriptors not in use.
    private(set) var freeDescriptors: Int
    private var availIndex: UInt16 = 0
    private var lastUsed: UInt16 = 0
    private var nextSlot = 0
    private var availWrap = true
    private var usedSlot = 0
    private var usedWrap = true

    /// Bytes of guest RAM a ring of `size` entries takes at `base` (the legacy layout: descriptors and avail ring,
    /// then the used ring on the next 4096-byte boundary; packed: descriptors, then the two event areas).
    static func footprint(size: Int, packed: Bool) -> Int {
        if packed { return 16 * size + 8 }
        return (16 * size + 6 + 2 * size + 4095) & ~4095 + 6 + 8 * size
    }

    /// Where the descriptor, driver and device areas of a ring of `size` entries at `base` are (see
    /// ``footprint(size:packed:)``).
    static func areas(base: UInt64, size: Int, packed: Bool) -> (descriptor: UInt64, driver: UInt64, device: UInt64) {
        let driver = base + 16 * UInt64(size)
        return (base, driver, packed ? driver + 4 : (driver + 6 + 2 * UInt64(size) + 4095) & ~4095)
    }

    /// A zeroed ring of `size` entries at `base` (4096-aligned), as vring_create_virtqueue allocates it.
    init(harness: CardHarness, index: Int, size: Int, packed: Bool, base: UInt64) throws(HarnessError) {
        self.harness = harness
        self.index = index
        self.size = size
        self.packed = packed
        (descriptorArea, driverArea, deviceArea) = Self.areas(base: base, size: size, packed: packed)
        free = (0..<size).reversed().map { UInt16($0) }
        chains = [[UInt16]](repeating: [], count: size)
        counts = [Int](repeating: 0, count: size)
        outstanding = [Bool](repeating: false, count: size)
        freeDescriptors = size
        try harness.fill(0, count: Self.footprint(size: size, packed: packed), at: base)
    }

    private func le(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// 16 descriptor bytes: address, length, then two 16-bit words (split: flags, next; packed: ID, flags).
    private func descriptor(_ buffer: Buffer, word: UInt16, flags: UInt16) -> [UInt8] {
        le(buffer.address, 8) + le(UInt64(buffer.length), 4) + le(UInt64(word), 2) + le(UInt64(flags), 2)
    }

    /// Makes a chain available (virtqueue_add): returns its token, or `nil` when the ring has no room.
    func add(_ buffers: [Buffer]) throws(HarnessError) -> Int? {
        guard !buffers.isEmpty, buffers.count <= freeDescriptors, let token = free.last else { return nil }
        return packed ? try addPacked(buffers, id: token) : try addSplit(buffers)
    }

    private func addSplit(_ buffers: [Buffer]) throws(HarnessError) -> Int {
        var indices: [UInt16] = []
        for _ in buffers { indices.append(free.removeLast()) }
        for (position, buffer) in buffers.enumerated() {
            let last = position == buffers.count - 1
            let flags: UInt16 = (last ? 0 : 1) | (buffer.writable ? 2 : 0)
            let next = last ? 0 : indices[position + 1]
            try harness.store(
                descriptor(buffer, word: flags, flags: next),
                at: descriptorArea + 16 * UInt64(indices[position]))
        }
        let head = Int(indices[0])
        chains[head] = indices
        outstanding[head] = true
        freeDescriptors -= buffers.count
        try harness.store(le(UInt64(head), 2), at: driverArea + 4 + 2 * UInt64(Int(availIndex) % size))
        availIndex &+= 1
        try harness.store(le(UInt64(availIndex), 2), at: driverArea + 2, comment: "avail idx \(availIndex)")
        return head
    }

    private func addPacked(_ buffers: [Buffer], id: UInt16) throws(HarnessError) -> Int {
        free.removeLast()
        let headSlot = nextSlot
        var headFlags: UInt16 = 0
        for (position, buffer) in buffers.enumerated() {
            let last = position == buffers.count - 1
            let flags: UInt16 = (last ? 0 : 1) | (buffer.writable ? 2 : 0) | (availWrap ? 0x0080 : 0x8000)
            if position == 0 {
                headFlags = flags
                // The head's flags go last, so the device never sees a half-written chain.
                try harness.store(
                    Array(descriptor(buffer, word: id, flags: 0).prefix(14)),
                    at: descriptorArea + 16 * UInt64(nextSlot))
            } else {
                try harness.store(
                    descriptor(buffer, word: id, flags: flags), at: descriptorArea + 16 * UInt64(nextSlot))
            }
            nextSlot += 1
            if nextSlot == size {
                nextSlot = 0
                availWrap.toggle()
            }
        }
        try harness.store(
            le(UInt64(headFlags), 2), at: descriptorArea + 16 * UInt64(headSlot) + 14,
            comment: "make id \(id) available")
        counts[Int(id)] = buffers.count
        outstanding[Int(id)] = true
        freeDescriptors -= buffers.count
        return Int(id)
    }

    /// Whether the device wants a notification (split: VRING_USED_F_NO_NOTIFY clear; packed: device events not
    /// disabled).
    func needsKick() throws(HarnessError) -> Bool {
        if packed {
            let flags = try harness.load(at: deviceArea + 2, count: 2)
            return flags[0] & 0x3 != 1
        }
        return try harness.load(at: deviceArea, count: 2)[0] & 1 == 0
    }

    /// Asks the device not to interrupt for this queue (or to interrupt again).
    func suppressInterrupts(_ suppress: Bool) throws(HarnessError) {
        if packed {
            try harness.store(le(suppress ? 1 : 0, 2), at: driverArea + 2)
        } else {
            try harness.store(le(suppress ? 1 : 0, 2), at: driverArea)
        }
    }

    /// The chains the device returned since the last call (virtqueue_get_buf), at most a ring's worth: token and the
    /// length the device wrote. A used entry naming no outstanding chain is the device's bug: an error.
    func takeUsed() throws(HarnessError) -> [(token: Int, length: Int)] {
        packed ? try takeUsedPacked() : try takeUsedSplit()
    }

    private func loadLE(_ address: UInt64, _ count: Int) throws(HarnessError) -> UInt64 {
        let bytes = try harness.load(at: address, count: count)
        var value: UInt64 = 0
        for (position, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(position)) }
        return value
    }

    private func takeUsedSplit() throws(HarnessError) -> [(token: Int, length: Int)] {
        let usedIndex = UInt16(truncatingIfNeeded: try loadLE(deviceArea + 2, 2))
        let pending = Int(usedIndex &- lastUsed)
        guard pending <= size else { throw HarnessError("queue \(index): used idx \(usedIndex) runs \(pending) ahead") }
        var entries: [(token: Int, length: Int)] = []
        for _ in 0..<pending {
            let entry = try loadLE(deviceArea + 4 + 8 * UInt64(Int(lastUsed) % size), 8)
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
            let flags = UInt16(truncatingIfNeeded: try loadLE(at + 14, 2))
            guard (flags & 0x0080 != 0) == usedWrap, (flags & 0x8000 != 0) == usedWrap else { break }
            let id = Int(try loadLE(at + 12, 2))
            guard id < size, outstanding[id] else {
                throw HarnessError("queue \(index): used id \(id) was not available")
            }
            let length = Int(try loadLE(at + 8, 4))
            outstanding[id] = false
            free.append(UInt16(id))
            freeDescriptors += counts[id]
            usedSlot += counts[id]
            if usedSlot >= size {
                usedSlot -= size
                usedWrap.toggle()
            }
            entries.append((id, length))
        }
        return entries
    }
}
