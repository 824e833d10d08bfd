/// Bounded IPv4 reassembly: a few datagrams at a time, a few fragments each, none larger than an IP packet can be,
/// and any overlap drops the whole datagram (as RFC 5722 asks of IPv6).
struct NATReassembly {
    struct Key: Hashable {
        var source: IPv4Address
        var destination: IPv4Address
        var proto: UInt8
        var identification: UInt16
    }

    struct Piece {
        var offset: Int
        var bytes: [UInt8]
        var end: Int { offset + bytes.count }
    }

    struct Entry {
        var first: IPv4Packet?
        var pieces: [Piece] = []
        var total: Int?
        var received = 0
        var deadline: UInt64
    }

    enum Outcome {
        case incomplete
        case complete(IPv4Packet)
        case dropped(NATCounter)
    }

    private(set) var entries: [Key: Entry] = [:]

    /// Adds a fragment; returns the whole datagram when it is the last piece missing.
    mutating func add(_ packet: IPv4Packet, now: UInt64, limits: NATLimits, timeout: Double) -> Outcome {
        let key = Key(
            source: packet.source, destination: packet.destination, proto: packet.proto,
            identification: packet.identification)
        let offset = packet.fragmentOffset
        let end = offset + packet.payload.count
        if packet.moreFragments, packet.payload.isEmpty || packet.payload.count % 8 != 0 {
            entries[key] = nil
            return .dropped(.dropIPMalformed)
        }
        guard end + packet.header.count <= 65_535 else {
            entries[key] = nil
            return .dropped(.dropFragmentTooLarge)
        }
        var entry: Entry
        if let existing = entries[key] {
            entry = existing
        } else {
            guard entries.count < limits.reassemblies else { return .dropped(.dropFragmentTableFull) }
            entry = Entry(deadline: now &+ nanoseconds(timeout))
        }
        for piece in entry.pieces where piece.offset < end && offset < piece.end {
            if piece.offset == offset, piece.bytes == packet.payload { return .incomplete }  // a duplicate
            entries[key] = nil
            return .dropped(.dropFragmentOverlap)
        }
        if !packet.moreFragments {
            if let total = entry.total, total != end {
                entries[key] = nil
                return .dropped(.dropFragmentOverlap)
            }
            entry.total = end
        }
        if let total = entry.total, entry.pieces.contains(where: { $0.end > total }) || end > total {
            entries[key] = nil
            return .dropped(.dropFragmentOverlap)
        }
        guard entry.pieces.count < limits.fragmentsPerDatagram else {
            entries[key] = nil
            return .dropped(.dropFragmentTooMany)
        }
        entry.pieces.append(Piece(offset: offset, bytes: packet.payload))
        entry.received += packet.payload.count
        if offset == 0 { entry.first = packet }
        guard let total = entry.total, entry.received == total, var whole = entry.first else {
            entries[key] = entry
            return .incomplete
        }
        entries[key] = nil
        // No overlaps and the lengths add up to the total: the pieces tile the datagram exactly.
        var payload: [UInt8] = []
        payload.reserveCapacity(total)
        for piece in entry.pieces.sorted(by: { $0.offset < $1.offset }) { payload += piece.bytes }
        whole.payload = payload
        whole.reassembled = true
        return .complete(whole)
    }

    /// Drops datagrams past their deadline; returns the next deadline.
    mutating func expire(now: UInt64, counts: inout NATCounts) -> UInt64? {
        var next: UInt64? = nil
        for (key, entry) in entries {
            if entry.deadline <= now {
                entries[key] = nil
                counts.bump(.dropFragmentTimeout)
            } else {
                next = min(next ?? entry.deadline, entry.deadline)
            }
        }
        return next
    }
}
