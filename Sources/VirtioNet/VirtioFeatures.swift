/// Virtio feature bits: the virtio-net device bits and the transport bits this device knows.
public struct VirtioFeatures: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    init(bit: Int) { rawValue = 1 << UInt64(bit) }

    // virtio-net (virtio 1.2 §5.1.3)
    /// VIRTIO_NET_F_CSUM: the device completes partial transmit checksums (bit 0).
    public static let checksum = VirtioFeatures(bit: 0)
    /// VIRTIO_NET_F_GUEST_CSUM: the driver takes receive frames with partial checksums (bit 1).
    public static let guestChecksum = VirtioFeatures(bit: 1)
    /// VIRTIO_NET_F_CTRL_GUEST_OFFLOADS: guest receive offloads switchable through the control queue (bit 2).
    public static let controlGuestOffloads = VirtioFeatures(bit: 2)
    /// VIRTIO_NET_F_MTU: the device reports its MTU in the config (bit 3).
    public static let mtu = VirtioFeatures(bit: 3)
    /// VIRTIO_NET_F_MAC: the device reports its MAC address in the config (bit 5).
    public static let mac = VirtioFeatures(bit: 5)
    /// VIRTIO_NET_F_GUEST_TSO4: the driver takes TCPv4 super-frames (bit 7).
    public static let guestTSO4 = VirtioFeatures(bit: 7)
    /// VIRTIO_NET_F_GUEST_TSO6: the driver takes TCPv6 super-frames (bit 8).
    public static let guestTSO6 = VirtioFeatures(bit: 8)
    /// VIRTIO_NET_F_GUEST_ECN: the driver takes super-frames with ECN (bit 9).
    public static let guestECN = VirtioFeatures(bit: 9)
    /// VIRTIO_NET_F_GUEST_UFO: the driver takes UDP fragmentation super-frames (bit 10).
    public static let guestUFO = VirtioFeatures(bit: 10)
    /// VIRTIO_NET_F_HOST_TSO4: the device segments TCPv4 (bit 11).
    public static let hostTSO4 = VirtioFeatures(bit: 11)
    /// VIRTIO_NET_F_HOST_TSO6: the device segments TCPv6 (bit 12).
    public static let hostTSO6 = VirtioFeatures(bit: 12)
    /// VIRTIO_NET_F_HOST_ECN: the device segments with ECN (bit 13).
    public static let hostECN = VirtioFeatures(bit: 13)
    /// VIRTIO_NET_F_HOST_UFO: the device fragments UDP (bit 14).
    public static let hostUFO = VirtioFeatures(bit: 14)
    /// VIRTIO_NET_F_MRG_RXBUF: a received frame may span several chains (num_buffers) (bit 15).
    public static let mergeableReceiveBuffers = VirtioFeatures(bit: 15)
    /// VIRTIO_NET_F_STATUS: link status (and announce) in the config (bit 16).
    public static let status = VirtioFeatures(bit: 16)
    /// VIRTIO_NET_F_CTRL_VQ: the control queue exists (bit 17).
    public static let controlQueue = VirtioFeatures(bit: 17)
    /// VIRTIO_NET_F_CTRL_RX: RX mode and MAC table commands (bit 18).
    public static let controlReceive = VirtioFeatures(bit: 18)
    /// VIRTIO_NET_F_CTRL_VLAN: VLAN filter commands (bit 19).
    public static let controlVLAN = VirtioFeatures(bit: 19)
    /// VIRTIO_NET_F_CTRL_RX_EXTRA: the all-unicast, no-multicast, no-unicast and no-broadcast modes (bit 20).
    public static let controlReceiveExtra = VirtioFeatures(bit: 20)
    /// VIRTIO_NET_F_GUEST_ANNOUNCE: the driver announces itself when asked (bit 21).
    public static let guestAnnounce = VirtioFeatures(bit: 21)
    /// VIRTIO_NET_F_MQ: several queue pairs (bit 22).
    public static let multiqueue = VirtioFeatures(bit: 22)
    /// VIRTIO_NET_F_CTRL_MAC_ADDR: the MAC address is set through the control queue (bit 23).
    public static let controlMACAddress = VirtioFeatures(bit: 23)

    // transport (virtio 1.2 §6)
    /// VIRTIO_F_INDIRECT_DESC: indirect descriptor tables (bit 28).
    public static let indirectDescriptors = VirtioFeatures(bit: 28)
    /// VIRTIO_F_EVENT_IDX: used_event/avail_event notification suppression (bit 29).
    public static let eventIndex = VirtioFeatures(bit: 29)
    /// VIRTIO_F_VERSION_1: the virtio 1.x interface (bit 32).
    public static let version1 = VirtioFeatures(bit: 32)
    /// VIRTIO_F_RING_PACKED: packed virtqueues (bit 34).
    public static let packedRing = VirtioFeatures(bit: 34)

    /// The guest receive offloads CTRL_GUEST_OFFLOADS may switch.
    public static let guestOffloads: VirtioFeatures = [.guestChecksum, .guestTSO4, .guestTSO6, .guestECN, .guestUFO]

    /// What this device offers.
    public static let offered: VirtioFeatures = [
        .checksum, .guestChecksum, .controlGuestOffloads, .mtu, .mac, .guestTSO4, .guestTSO6, .guestECN, .guestUFO,
        .hostTSO4, .hostTSO6, .hostECN, .hostUFO, .mergeableReceiveBuffers, .status, .controlQueue, .controlReceive,
        .controlVLAN, .controlReceiveExtra, .guestAnnounce, .multiqueue, .controlMACAddress, .indirectDescriptors,
        .eventIndex, .version1, .packedRing,
    ]

    /// The dependency rules of virtio 1.2 §5.1.3.1 and §6: a feature on the left needs at least one of the right.
    static let dependencies: [(feature: VirtioFeatures, needsOneOf: VirtioFeatures)] = [
        (.guestTSO4, .guestChecksum),
        (.guestTSO6, .guestChecksum),
        (.guestECN, [.guestTSO4, .guestTSO6]),
        (.guestUFO, .guestChecksum),
        (.hostTSO4, .checksum),
        (.hostTSO6, .checksum),
        (.hostECN, [.hostTSO4, .hostTSO6]),
        (.hostUFO, .checksum),
        (.controlReceive, .controlQueue),
        (.controlVLAN, .controlQueue),
        (.controlReceiveExtra, .controlReceive),
        (.guestAnnounce, .controlQueue),
        (.multiqueue, .controlQueue),
        (.controlMACAddress, .controlQueue),
        (.controlGuestOffloads, .controlQueue),
        (.packedRing, .version1),
    ]

    /// The first rule `self` breaks, if any.
    var brokenDependency: (feature: VirtioFeatures, needsOneOf: VirtioFeatures)? {
        Self.dependencies.first { contains($0.feature) && isDisjoint(with: $0.needsOneOf) }
    }

    /// `self` with every feature whose dependencies are missing removed, repeated until stable (the legacy
    /// interface has no FEATURES_OK to refuse with).
    var closedUnderDependencies: VirtioFeatures {
        var features = self
        while let broken = features.brokenDependency { features.remove(broken.feature) }
        return features
    }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// The device status register (virtio 1.2 §2.1).
public struct VirtioDeviceStatus: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The guest found the device.
    public static let acknowledge = VirtioDeviceStatus(rawValue: 1)
    /// The guest has a driver for it.
    public static let driver = VirtioDeviceStatus(rawValue: 2)
    /// The driver is ready: queues are live.
    public static let driverOK = VirtioDeviceStatus(rawValue: 4)
    /// The device accepted the driver's features (the device clears it to refuse them).
    public static let featuresOK = VirtioDeviceStatus(rawValue: 8)
    /// The device met an error (a broken ring) and needs a reset.
    public static let needsReset = VirtioDeviceStatus(rawValue: 0x40)
    /// The driver gave up on the device.
    public static let failed = VirtioDeviceStatus(rawValue: 0x80)
}
