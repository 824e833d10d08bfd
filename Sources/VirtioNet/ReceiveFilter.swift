import NICCore

/// The receive filter the control queue programs: RX modes, the MAC tables and the VLAN filter.
struct ReceiveFilter {
    /// The most addresses each MAC table keeps; a longer list sets the table's overflow flag (accept all of its kind).
    static let tableCapacity = 64

    /// On at reset, as QEMU does, until a driver with CTRL_RX turns it off.
    var promiscuous = true
    var allMulticast = false
    var allUnicast = false
    var noMulticast = false
    var noUnicast = false
    var noBroadcast = false
    var unicast: [MACAddress] = []
    var multicast: [MACAddress] = []
    var unicastOverflow = false
    var multicastOverflow = false
    /// With CTRL_VLAN every tagged frame's VLAN must be in ``vlans``; without it, every VLAN passes.
    var vlanFilterEnabled = false
    var vlans = [UInt64](repeating: 0, count: 64)

    func allows(vlan: Int) -> Bool { vlans[vlan >> 6] & (1 << UInt64(vlan & 63)) != 0 }

    mutating func set(vlan: Int, _ on: Bool) {
        if on { vlans[vlan >> 6] |= 1 << UInt64(vlan & 63) } else { vlans[vlan >> 6] &= ~(1 << UInt64(vlan & 63)) }
    }

    /// Whether a frame to `frame`'s destination passes, for a device whose address is `mac`.
    func accepts(_ frame: UnsafeRawBufferPointer, mac: MACAddress) -> Bool {
        if promiscuous { return true }
        guard let destination = MACAddress(in: frame, at: 0) else { return false }
        if vlanFilterEnabled, frame.count >= 16, frame.load(bigEndian: UInt16.self, at: 12) == EtherType.vlan {
            let vlan = Int(frame.load(bigEndian: UInt16.self, at: 14) ?? 0) & 0xFFF
            guard allows(vlan: vlan) else { return false }
        }
        if destination.isMulticast {
            if destination.isBroadcast { return !noBroadcast }
            if noMulticast { return false }
            if allMulticast || multicastOverflow { return true }
            return multicast.contains(destination)
        }
        if noUnicast { return false }
        if allUnicast || unicastOverflow || destination == mac { return true }
        return unicast.contains(destination)
    }
}
