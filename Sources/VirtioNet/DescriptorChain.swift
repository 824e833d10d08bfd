import NICCore

/// Why a virtqueue is broken. Every case puts the device in DEVICE_NEEDS_RESET: the guest broke the ring contract,
/// and the device stops using the queue instead of guessing.
package enum VirtqueueError: Error, Hashable, Sendable {
    /// A head index (split: from the available ring) is not below the queue size.
    case headOutOfRange
    /// A `next` index is not below the queue size (or the indirect table length).
    case nextOutOfRange
    /// A chain is longer than the queue size (or its indirect table): a loop.
    case chainTooLong
    /// An indirect table contains another indirect descriptor.
    case nestedIndirect
    /// An indirect table's length is 0 or not a multiple of 16.
    case badIndirectLength
    /// An indirect descriptor used without VIRTIO_F_INDIRECT_DESC, or together with NEXT.
    case unexpectedIndirect
    /// A device-readable descriptor follows a device-writable one.
    case readableAfterWritable
    /// A descriptor of length 0.
    case zeroLengthDescriptor
    /// The available index ran more than the queue size ahead of the device.
    case availableIndexTooFar
    /// The driver made a queue available with a size the ring format cannot use.
    case badQueueSize
    /// A ring or buffer access that DMA refused (outside RAM, inside a BAR, wrapping, bus mastering off).
    case memory(DMAError)

    /// The counter name for this error.
    var counterName: String {
        switch self {
        case .headOutOfRange: "ring_error_head_out_of_range"
        case .nextOutOfRange: "ring_error_next_out_of_range"
        case .chainTooLong: "ring_error_chain_loop"
        case .nestedIndirect: "ring_error_nested_indirect"
        case .badIndirectLength: "ring_error_indirect_length"
        case .unexpectedIndirect: "ring_error_unexpected_indirect"
        case .readableAfterWritable: "ring_error_readable_after_writable"
        case .zeroLengthDescriptor: "ring_error_zero_length"
        case .availableIndexTooFar: "ring_error_avail_index_too_far"
        case .badQueueSize: "ring_error_bad_queue_size"
        case .memory: "ring_error_dma"
        }
    }

    /// Every counter name, in a fixed order.
    static let allCounterNames: [String] = [
        VirtqueueError.headOutOfRange, .nextOutOfRange, .chainTooLong, .nestedIndirect, .badIndirectLength,
        .unexpectedIndirect, .readableAfterWritable, .zeroLengthDescriptor, .availableIndexTooFar, .badQueueSize,
        .memory(DMAError(.outsideRAM, address: GuestAddress(0), length: 0, isWrite: false)),
    ].map(\.counterName)
}

/// One buffer of a descriptor chain: guest-physical address, length and direction.
package struct ChainSegment: Hashable, Sendable {
    /// Guest-physical address of the buffer.
    package var address: UInt64
    /// Length in bytes (never 0).
    package var length: UInt32
    /// Whether the device writes the buffer (else it reads it).
    package var isWritable: Bool

    /// A buffer of `length` bytes at `address` (the harness's driver builds its chains from these too).
    package init(address: UInt64, length: UInt32, isWritable: Bool) {
        (self.address, self.length, self.isWritable) = (address, length, isWritable)
    }
}

/// A descriptor chain copied out of the ring: every descriptor was read once, checked and stored here, so later
/// guest writes to the ring cannot change what the device acts on. Reused from chain to chain (no allocation once
/// grown).
package final class DescriptorChain {
    /// The buffer ID the device returns in the used ring (split: the head index; packed: the ID of the last
    /// descriptor).
    @exclusivity(unchecked) package internal(set) var id: UInt16 = 0
    /// Ring slots the chain occupies (packed rings skip this many on return; split rings ignore it).
    @exclusivity(unchecked) package internal(set) var ringSlots: UInt16 = 0
    /// Segment storage: `capacity` slots, the first ``count`` valid; grows by doubling, never shrinks.
    @exclusivity(unchecked) private var storage: UnsafeMutablePointer<ChainSegment>
    @exclusivity(unchecked) private var capacity = 8
    /// Valid segments.
    @exclusivity(unchecked) package internal(set) var count = 0
    /// Total bytes of device-readable segments.
    @exclusivity(unchecked) package internal(set) var readableBytes = 0
    /// Total bytes of device-writable segments.
    @exclusivity(unchecked) package internal(set) var writableBytes = 0
    /// Index of the first device-writable segment (``count`` if none).
    @exclusivity(unchecked) package internal(set) var firstWritable = 0

    package init() {
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    /// The segments, in chain order.
    package var segments: [ChainSegment] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    func clear() {
        count = 0
        readableBytes = 0
        writableBytes = 0
        firstWritable = 0
        id = 0
        ringSlots = 0
    }

    @inline(__always)
    func append(address: UInt64, length: UInt32, writable: Bool) throws(VirtqueueError) {
        guard length != 0 else { throw .zeroLengthDescriptor }
        guard !address.addingReportingOverflow(UInt64(length)).overflow else {
            throw .memory(
                DMAError(.wrapsAddressSpace, address: GuestAddress(address), length: Int(length), isWrite: writable))
        }
        if writable {
            writableBytes += Int(length)
        } else {
            guard writableBytes == 0 else { throw .readableAfterWritable }
            readableBytes += Int(length)
            firstWritable = count + 1
        }
        if count == capacity {
            let grown = UnsafeMutablePointer<ChainSegment>.allocate(capacity: 2 * capacity)
            grown.moveInitialize(from: storage, count: count)
            storage.deallocate()
            storage = grown
            capacity *= 2
        }
        (storage + count).initialize(to: ChainSegment(address: address, length: length, isWritable: writable))
        count += 1
    }

    /// Copies up to `buffer.count` device-readable bytes, starting `skip` bytes into the readable part, into
    /// `buffer`. Returns the number of bytes copied.
    func gather(from memory: BusMaster, skipping skip: Int = 0, into buffer: UnsafeMutableRawBufferPointer)
        throws(VirtqueueError) -> Int
    {
        var toSkip = skip
        var copied = 0
        var index = 0
        while index < firstWritable, copied < buffer.count {
            let segment = storage[index]
            index += 1
            var length = Int(segment.length)
            var address = segment.address
            if toSkip >= length {
                toSkip -= length
                continue
            }
            address &+= UInt64(toSkip)
            length -= toSkip
            toSkip = 0
            let n = min(length, buffer.count - copied)
            do {
                try memory.read(
                    at: GuestAddress(address),
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<copied + n]))
            } catch { throw .memory(error) }
            copied += n
        }
        return copied
    }

    /// Writes `header` and then `frame` into the device-writable segments from their start: the header and as much
    /// of the frame as the first writable segment holds in one DMA, the rest segment by segment. Returns the frame
    /// bytes written (0 if the header did not fit).
    func scatter(header: UnsafeRawBufferPointer, frame: UnsafeRawBufferPointer, to memory: BusMaster)
        throws(VirtqueueError) -> Int
    {
        guard firstWritable < count else { return 0 }
        let segment = storage[firstWritable]
        let length = Int(segment.length)
        guard length >= header.count else {
            guard try scatter(header, to: memory, at: 0) == header.count else { return 0 }
            return try scatter(frame, to: memory, at: header.count)
        }
        let inFirst = min(length - header.count, frame.count)
        do {
            try memory.write(
                at: GuestAddress(segment.address), from: header,
                then: UnsafeRawBufferPointer(rebasing: frame[0..<inFirst]))
        } catch { throw .memory(error) }
        guard inFirst < frame.count else { return inFirst }
        return try inFirst + scatter(UnsafeRawBufferPointer(rebasing: frame[inFirst...]), to: memory, at: length)
    }

    /// Writes `source` into the device-writable segments starting `offset` bytes into the writable part. Returns
    /// the bytes written (less than `source.count` only if the chain is too short).
    func scatter(_ source: UnsafeRawBufferPointer, to memory: BusMaster, at offset: Int) throws(VirtqueueError) -> Int {
        var toSkip = offset
        var written = 0
        var index = firstWritable
        while index < count, written < source.count {
            let segment = storage[index]
            index += 1
            let length = Int(segment.length)
            if toSkip >= length {
                toSkip -= length
                continue
            }
            let n = min(length - toSkip, source.count - written)
            do {
                try memory.write(
                    at: GuestAddress(segment.address &+ UInt64(toSkip)),
                    from: UnsafeRawBufferPointer(rebasing: source[written..<written + n]))
            } catch { throw .memory(error) }
            toSkip = 0
            written += n
        }
        return written
    }
}
