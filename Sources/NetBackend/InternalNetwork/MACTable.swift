import NICCore

/// A bounded MAC learning table: which switch port each source address was last seen on.
///
/// Entries are kept in least-recently-seen order in a fixed pool of nodes, so learning, refreshing, looking up and
/// evicting are O(1) and the table never holds more than ``capacity`` entries, however many source addresses a
/// guest sprays. Not thread-safe: the switch keeps it under its lock.
struct MACTable {
    private struct Node {
        var address: MACAddress
        var port: UInt64
        var older: Int
        var newer: Int
    }

    /// The most entries the table holds.
    let capacity: Int
    private var nodes: [Node] = []
    private var slots: [MACAddress: Int] = [:]
    private var free: [Int] = []
    private var oldest = -1
    private var newest = -1

    /// Creates an empty table of at most `capacity` entries (at least 1).
    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The number of learned addresses.
    var count: Int { slots.count }

    /// The port `address` was last seen on.
    func port(for address: MACAddress) -> UInt64? {
        slots[address].map { nodes[$0].port }
    }

    /// Records that `address` was seen on `port`, making it the newest entry. Returns `true` if an older entry had
    /// to be evicted to make room.
    @discardableResult
    mutating func learn(_ address: MACAddress, on port: UInt64) -> Bool {
        if let slot = slots[address] {
            nodes[slot].port = port
            unlink(slot)
            append(slot)
            return false
        }
        var evicted = false
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            nodes[slot] = Node(address: address, port: port, older: -1, newer: -1)
        } else if nodes.count < capacity {
            slot = nodes.count
            nodes.append(Node(address: address, port: port, older: -1, newer: -1))
        } else {
            slot = oldest
            unlink(slot)
            slots[nodes[slot].address] = nil
            nodes[slot] = Node(address: address, port: port, older: -1, newer: -1)
            evicted = true
        }
        slots[address] = slot
        append(slot)
        return evicted
    }

    /// Forgets every address learned on `port`. Returns how many were forgotten.
    @discardableResult
    mutating func forget(port: UInt64) -> Int {
        var forgotten = 0
        var slot = oldest
        while slot >= 0 {
            let next = nodes[slot].newer
            if nodes[slot].port == port {
                unlink(slot)
                slots[nodes[slot].address] = nil
                free.append(slot)
                forgotten += 1
            }
            slot = next
        }
        return forgotten
    }

    private mutating func unlink(_ slot: Int) {
        let older = nodes[slot].older
        let newer = nodes[slot].newer
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        nodes[slot].older = -1
        nodes[slot].newer = -1
    }

    private mutating func append(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = -1
        if newest >= 0 { nodes[newest].newer = slot } else { oldest = slot }
        newest = slot
    }
}
