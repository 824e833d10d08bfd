import NICCore

/// Where everything lives in the card's BARs and config space.
///
/// | BAR | kind | size | contents |
/// |---|---|---|---|
/// | 0 | I/O | 64 B | legacy header (20 B, or 24 B with MSI-X enabled), then the device config |
/// | 1 | memory32 | 4 KiB | MSI-X table at 0x000 (16 B per vector), PBA at 0x800 |
/// | 4 | memory64 | 16 KiB | modern: common cfg 0x0000, ISR 0x1000, device cfg 0x2000, notify 0x3000 (multiplier 4) |
///
/// The capability list holds the five virtio vendor capabilities (common, notify, ISR, device, PCI cfg access) and
/// the MSI-X capability.
package enum VirtioPCILayout {
    /// The PCI identity of the transitional virtio-net function.
    package static let identity = PCIIdentity(
        vendorID: 0x1AF4, deviceID: 0x1000, revisionID: 0, classCode: 0x02_0000, subsystemVendorID: 0x1AF4,
        subsystemID: 1)

    /// The BARs the function decodes, by index.
    package enum BAR: Int, CaseIterable, Sendable {
        /// The legacy header and device config.
        case legacy = 0
        /// The MSI-X table and PBA.
        case msix = 1
        /// The modern regions.
        case modern = 4

        /// The BAR's kind and size.
        package var layout: BARLayout {
            switch self {
            case .legacy: BARLayout(.io, size: 64)
            case .msix: BARLayout(.memory32(prefetchable: false), size: 4096)
            case .modern: BARLayout(.memory64(prefetchable: true), size: 0x4000)
            }
        }
    }

    /// Where the MSI-X table and the PBA start in the MSI-X BAR.
    package static let msixTableOffset: UInt64 = 0
    package static let msixPBAOffset: UInt64 = 0x800

    /// The modern regions in the modern BAR, one ``regionLength`` page each, in this order.
    package enum ModernRegion: UInt64, Sendable {
        case common = 0
        case isr, device, notify

        /// The region's offset in the BAR.
        package var offset: UInt64 { rawValue * regionLength }

        /// The region that BAR offset `offset` (not negative) falls in.
        package init?(containing offset: Int) { self.init(rawValue: UInt64(offset) / regionLength) }
    }

    /// The length of each modern region.
    package static let regionLength: UInt64 = 0x1000
    /// Bytes between two queues' notify addresses (queue_notify_off is the queue index).
    package static let notifyMultiplier: UInt32 = 4

    /// virtio_pci_cap cfg_type values.
    package enum CapabilityType: UInt8, Sendable {
        case common = 1
        case notify = 2
        case isr = 3
        case device = 4
        case pciConfigAccess = 5
    }

    /// The vendor-specific capability ID and the MSI-X capability ID.
    package static let vendorCapabilityID: UInt8 = 0x09
    package static let msixCapabilityID: UInt8 = 0x11

    static func barLayouts() -> [Int: BARLayout] {
        Dictionary(uniqueKeysWithValues: BAR.allCases.map { ($0.rawValue, $0.layout) })
    }

    private static func le32(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// The body of a virtio_pci_cap after its ID and next pointer: cap_len, cfg_type, bar, id, padding[2], offset,
    /// length, then `extra`.
    static func vendorCapabilityBody(
        _ type: CapabilityType, bar: Int, offset: UInt64, length: UInt64, extra: [UInt8] = []
    )
        -> [UInt8]
    {
        let capLength = UInt8(16 + extra.count)
        return [capLength, type.rawValue, UInt8(bar), 0, 0, 0] + le32(UInt32(offset)) + le32(UInt32(length)) + extra
    }

    /// Adds every capability (MSI-X only if `msix`); returns the offsets of the MSI-X capability and of the PCI cfg
    /// access capability.
    static func addCapabilities(to config: PCIConfigSpace, vectors: Int, msix withMSIX: Bool) throws(PCIConfigError)
        -> (msix: Int?, pciConfigAccess: Int)
    {
        // The modern regions, each a page of the modern BAR; notify adds its multiplier.
        let regions: [(CapabilityType, ModernRegion)] = [
            (.common, .common), (.notify, .notify), (.isr, .isr), (.device, .device),
        ]
        for (type, region) in regions {
            let extra = type == .notify ? le32(notifyMultiplier) : []
            try config.addCapability(
                id: vendorCapabilityID,
                body: vendorCapabilityBody(
                    type, bar: BAR.modern.rawValue, offset: region.offset, length: regionLength, extra: extra))
        }
        // PCI cfg access: bar, offset and length are the driver's to write, then pci_cfg_data.
        let accessBody = vendorCapabilityBody(.pciConfigAccess, bar: 0, offset: 0, length: 0, extra: [0, 0, 0, 0])
        var accessMask = [UInt8](repeating: 0, count: accessBody.count)
        accessMask[2] = 0xFF  // bar
        for i in 6..<18 { accessMask[i] = 0xFF }  // offset, length, data
        let access = try config.addCapability(id: vendorCapabilityID, body: accessBody, writableMask: accessMask)
        guard withMSIX else { return (nil, access) }
        // MSI-X: message control (table size - 1; enable bit 15 and function mask bit 14 writable), table, PBA.
        let control = UInt16(vectors - 1)
        let msixBody =
            [UInt8(truncatingIfNeeded: control), UInt8(truncatingIfNeeded: control >> 8)]
            + le32(UInt32(msixTableOffset) | UInt32(BAR.msix.rawValue))
            + le32(UInt32(msixPBAOffset) | UInt32(BAR.msix.rawValue))
        var msixMask = [UInt8](repeating: 0, count: msixBody.count)
        msixMask[1] = 0xC0
        let msix = try config.addCapability(id: msixCapabilityID, body: msixBody, writableMask: msixMask)
        return (msix, access)
    }
}

/// A register block whose registers follow one another without gaps, in case order (raw values 0, 1, 2...), each
/// ``width`` bytes wide: a register's offset is the sum of the widths before it.
protocol PackedRegisters: RawRepresentable where RawValue == Int {
    /// The register's width in bytes.
    var width: Int { get }
}

extension PackedRegisters {
    /// The register containing `offset` and where in it the access starts.
    static func containing(_ offset: Int) -> (Self, Int)? {
        var start = 0
        var index = 0
        while let register = Self(rawValue: index) {
            if offset >= start && offset < start + register.width { return (register, offset - start) }
            start += register.width
            index += 1
        }
        return nil
    }

    /// The register starting at `offset` with `width` bytes, if there is one.
    static func at(_ offset: Int, width: Int) -> Self? {
        guard let (register, inner) = containing(offset), inner == 0, register.width == width else { return nil }
        return register
    }
}

/// The legacy header in BAR0 (virtio 1.2 §4.1.4.8).
enum LegacyRegister: Int, PackedRegisters {
    case deviceFeatures, driverFeatures, queueAddress, queueSize, queueSelect, queueNotify, deviceStatus, isrStatus
    /// Present only while MSI-X is enabled.
    case configVector
    case queueVector

    var width: Int {
        switch self {
        case .deviceFeatures, .driverFeatures, .queueAddress: 4
        case .queueSize, .queueSelect, .queueNotify, .configVector, .queueVector: 2
        case .deviceStatus, .isrStatus: 1
        }
    }

    /// The header length: where the device config starts.
    static func headerLength(msixEnabled: Bool) -> Int { msixEnabled ? 0x18 : 0x14 }
}

/// struct virtio_pci_common_cfg in BAR4 (virtio 1.2 §4.1.4.3): the registers follow one another without gaps, in
/// case order, each of its width.
enum CommonRegister: Int, PackedRegisters {
    case deviceFeatureSelect, deviceFeature, driverFeatureSelect, driverFeature, configVector, queueCount
    case deviceStatus, configGeneration, queueSelect, queueSize, queueVector, queueEnable, queueNotifyOffset
    case queueDescriptor, queueDriver, queueDevice, queueNotifyData, queueReset

    var width: Int {
        switch self {
        case .deviceFeatureSelect, .deviceFeature, .driverFeatureSelect, .driverFeature: 4
        case .deviceStatus, .configGeneration: 1
        case .queueDescriptor, .queueDriver, .queueDevice: 8
        default: 2
        }
    }
}

/// struct virtio_net_config (virtio 1.2 §5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu.
enum NetConfigField: Int, PackedRegisters {
    case mac, status, maxQueuePairs, mtu

    var width: Int { self == .mac ? 6 : 2 }
}

/// The status bits of struct virtio_net_config.
enum NetConfigStatus: UInt16, RegisterBit {
    /// VIRTIO_NET_S_LINK_UP.
    case linkUp = 0
    /// VIRTIO_NET_S_ANNOUNCE.
    case announce
}
