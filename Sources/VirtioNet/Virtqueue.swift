import NICCore

/// The vector value that means "no MSI-X vector" (VIRTIO_MSI_NO_VECTOR).
package let virtioNoVector: UInt16 = 0xFFFF

/// One used-ring entry waiting to be published.
struct UsedElement {
    var id: UInt32
    var length: UInt32
    var slots: UInt16
}

/// A position in the available ring the device can return to (``Virtqueue/rewind(to:)``), to give back chains it
/// popped but could not use.
package struct AvailableMark: Hashable, Sendable {
    var position: UInt16
    var wrap: Bool
}

/// One virtqueue as the device sees it: the registers the driver programs and the device's side of a split or packed
/// ring. It knows nothing of networking.
///
/// The engine copies every descriptor in once, bounds every chain walk (by the queue size, an indirect table by its
/// length), and reports a broken ring as a ``VirtqueueError`` instead of acting on it. Used entries are batched:
/// ``push(_:length:)`` queues one, ``flush()`` publishes the batch with one write per contiguous run plus the index,
/// and answers whether the driver asked for an interrupt.
///
/// A virtqueue is owned by one thread at a time.
package final class Virtqueue {
    /// The queue's index in the device.
    package let index: Int
    /// The largest size the device offers.
    package let maximumSize: UInt16
    let memory: BusMaster

    // MARK: Driver-programmed registers

    /// The size the driver chose (the maximum until it writes one).
    @exclusivity(unchecked) package var size: UInt16
    /// Whether the driver enabled the queue (modern queue_enable, or a non-zero legacy PFN).
    @exclusivity(unchecked) package var enabled = false
    /// The MSI-X vector for this queue, or ``virtioNoVector``.
    @exclusivity(unchecked) package var vector: UInt16 = virtioNoVector
    /// Descriptor table / descriptor ring address.
    @exclusivity(unchecked) package var descriptorArea: UInt64 = 0
    /// Available ring (split) or driver event suppression structure (packed).
    @exclusivity(unchecked) package var driverArea: UInt64 = 0
    /// Used ring (split) or device event suppression structure (packed).
    @exclusivity(unchecked) package var deviceArea: UInt64 = 0

    // MARK: Negotiated ring format

    @exclusivity(unchecked) package internal(set) var isPacked = false
    @exclusivity(unchecked) package internal(set) var usesEventIndex = false
    @exclusivity(unchecked) package internal(set) var allowsIndirect = false

    // MARK: Device-side ring state

    /// Split: the next available index to consume. Packed: the next descriptor position.
    @exclusivity(unchecked) var availPosition: UInt16 = 0
    /// Packed: the driver ring wrap counter the device expects.
    @exclusivity(unchecked) var availWrap = true
    /// Split: the used index to publish next. Packed: the next used descriptor position.
    @exclusivity(unchecked) var usedPosition: UInt16 = 0
    /// Packed: the device ring wrap counter.
    @exclusivity(unchecked) var usedWrap = true
    /// Split: the available index last read from the ring.
    @exclusivity(unchecked) var availShadow: UInt16 = 0
    /// Split: ring entries read ahead, for indices `cacheBase ..< cacheBase + cacheCount`.
    @exclusivity(unchecked) var availCache: [UInt16] = []
    @exclusivity(unchecked) var cacheBase: UInt16 = 0
    @exclusivity(unchecked) var cacheCount: UInt16 = 0
    /// The used position at the last interrupt decision (event-index arithmetic).
    @exclusivity(unchecked) var signalledUsed: UInt16 = 0
    @exclusivity(unchecked) var signalledUsedWrap = true
    @exclusivity(unchecked) var signalledValid = false
    /// Used entries waiting for ``flush()``.
    @exclusivity(unchecked) var pending: [UsedElement] = []
    @exclusivity(unchecked) var pendingCount = 0
    /// Staging for the used-ring run being written.
    @exclusivity(unchecked) var usedStaging: [UInt32] = []

    // MARK: Counters

    /// Doorbells the driver rang for this queue.
    @exclusivity(unchecked) package internal(set) var notifications: UInt64 = 0
    /// Chains the device took.
    @exclusivity(unchecked) package internal(set) var chainsPopped: UInt64 = 0
    /// Flushes after which the driver wanted an interrupt.
    @exclusivity(unchecked) package internal(set) var interruptsWanted: UInt64 = 0
    /// Flushes after which the driver's suppression (flags or event index) withheld the interrupt.
    @exclusivity(unchecked) package internal(set) var interruptsSuppressed: UInt64 = 0

    /// Creates queue `index` offering at most `maximumSize` entries (1...32768).
    package init(index: Int, maximumSize: UInt16, memory: BusMaster) {
        self.index = index
        self.maximumSize = max(1, min(maximumSize, 32768))
        self.memory = memory
        size = self.maximumSize
    }

    /// Returns the queue to its reset state: disabled, maximum size, no vector, no addresses, empty rings.
    package func reset() {
        size = maximumSize
        enabled = false
        vector = virtioNoVector
        descriptorArea = 0
        driverArea = 0
        deviceArea = 0
        isPacked = false
        usesEventIndex = false
        allowsIndirect = false
        resetRingState()
    }

    func resetRingState() {
        availPosition = 0
        availWrap = true
        usedPosition = 0
        usedWrap = true
        availShadow = 0
        cacheBase = 0
        cacheCount = 0
        signalledUsed = 0
        signalledUsedWrap = true
        signalledValid = false
        pendingCount = 0
    }

    /// Sets the ring format from the negotiated features and checks the size against it (split rings need a power of
    /// two, since their free-running 16-bit indices wrap at 65536).
    package func configure(packed: Bool, eventIndex: Bool, indirect: Bool) throws(VirtqueueError) {
        isPacked = packed
        usesEventIndex = eventIndex
        allowsIndirect = indirect
        resetRingState()
        guard size >= 1, size <= maximumSize else { throw .badQueueSize }
        if !packed { guard size.nonzeroBitCount == 1 else { throw .badQueueSize } }
        if pending.count < Int(size) {
            pending = [UsedElement](repeating: UsedElement(id: 0, length: 0, slots: 0), count: Int(size))
            usedStaging = [UInt32](repeating: 0, count: 2 * Int(size))
        }
        if !packed, availCache.count < Int(size) { availCache = [UInt16](repeating: 0, count: Int(size)) }
    }

    /// Whether the queue is set up for use.
    package var isReady: Bool { enabled && size > 0 }

    // MARK: Popping chains

    /// Where the device stands in the available ring, to return to with ``rewind(to:)``.
    package var mark: AvailableMark { AvailableMark(position: availPosition, wrap: availWrap) }

    /// Gives back every chain popped since `mark` was taken, unused (they will be popped again).
    package func rewind(to mark: AvailableMark) {
        availPosition = mark.position
        availWrap = mark.wrap
    }

    /// Takes the next available chain into `chain`. Returns `false` when the driver has made nothing available.
    @inline(__always)
    package func pop(into chain: DescriptorChain) throws(VirtqueueError) -> Bool {
        chain.clear()
        let found = isPacked ? try popPacked(into: chain) : try popSplit(into: chain)
        if found { chainsPopped &+= 1 }
        return found
    }

    /// Queues `chain`'s return with `length` bytes written; published by ``flush()``.
    @inline(__always)
    package func push(_ chain: DescriptorChain, length: Int) throws(VirtqueueError) {
        try push(id: chain.id, slots: chain.ringSlots, length: length)
    }

    func push(id: UInt16, slots: UInt16, length: Int) throws(VirtqueueError) {
        if pendingCount >= pending.count { _ = try flush() }
        guard pendingCount < pending.count else { return }
        pending[pendingCount] = UsedElement(
            id: UInt32(id), length: UInt32(truncatingIfNeeded: max(0, length)), slots: slots)
        pendingCount += 1
    }

    /// Publishes the pushed entries. Returns whether the driver wants an interrupt for them (counted either way).
    @discardableResult
    package func flush() throws(VirtqueueError) -> Bool {
        guard pendingCount > 0 else { return false }
        let wanted = isPacked ? try flushPacked() : try flushSplit()
        pendingCount = 0
        if wanted { interruptsWanted &+= 1 } else { interruptsSuppressed &+= 1 }
        return wanted
    }

    /// Tells the driver the device wants a notification for anything it makes available from now on (event index:
    /// avail_event, or the packed device event suppression structure).
    package func requestNotifications() throws(VirtqueueError) {
        if isPacked { try publishPackedDeviceEvent() } else { try publishAvailEvent() }
    }

    // MARK: DMA helpers

    @inline(__always)
    func address(_ base: UInt64, plus offset: Int) throws(VirtqueueError) -> GuestAddress {
        let (sum, overflow) = base.addingReportingOverflow(UInt64(offset))
        guard !overflow else {
            throw .memory(DMAError(.wrapsAddressSpace, address: GuestAddress(base), length: offset, isWrite: false))
        }
        return GuestAddress(sum)
    }

    @inline(__always)
    func load16(_ base: UInt64, _ offset: Int) throws(VirtqueueError) -> UInt16 {
        let at = try address(base, plus: offset)
        do { return try memory.readLittleEndian(UInt16.self, at: at) } catch { throw .memory(error) }
    }

    @inline(__always)
    func store16(_ value: UInt16, _ base: UInt64, _ offset: Int) throws(VirtqueueError) {
        let at = try address(base, plus: offset)
        do { try memory.writeLittleEndian(value, at: at) } catch { throw .memory(error) }
    }

    /// One descriptor as it lies in memory: address, length, and (split) flags + next or (packed) id + flags.
    struct RawDescriptor {
        var address: UInt64 = 0
        var length: UInt32 = 0
        var word: UInt16 = 0
        var last: UInt16 = 0
    }

    @inline(__always)
    func loadDescriptor(_ base: UInt64, _ index: Int) throws(VirtqueueError) -> RawDescriptor {
        let at = try address(base, plus: index &* 16)
        var raw = RawDescriptor()
        do {
            try withUnsafeMutableBytes(of: &raw) { (buffer) throws(DMAError) in
                try memory.read(at: at, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<16]))
            }
        } catch { throw .memory(error) }
        return RawDescriptor(
            address: UInt64(littleEndian: raw.address), length: UInt32(littleEndian: raw.length),
            word: UInt16(littleEndian: raw.word), last: UInt16(littleEndian: raw.last))
    }

    /// The most descriptors an indirect table may hold: the queue size, but at least 1024 (QEMU's limit; Linux may
    /// build tables longer than a small ring), so one doorbell costs at most size × this many descriptor reads.
    var maximumIndirectEntries: Int { min(32768, max(Int(size), 1024)) }
}

/// Descriptor flag bits shared by both ring formats (the device's and, in the harness, the driver's side).
package enum DescriptorFlags: UInt16, RegisterBit {
    case next = 0
    case write, indirect
    /// Packed only.
    case available = 7
    /// Packed only.
    case used = 15
}

/// vring_need_event: whether an event index `event` lies in the window of indices the device just moved past
/// (`old ..< new`, modulo 2^16).
@inline(__always)
func needsEvent(_ event: UInt16, new: UInt16, old: UInt16) -> Bool {
    (new &- event &- 1) < (new &- old)
}
