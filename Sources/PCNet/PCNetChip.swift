import NICCore

/// The two PCnet chips vnic models. They share one register model; the Am79C973 adds the MII PHY (BCR32-35) and
/// the software timer (BCR31).
public enum PCNetChip: String, CaseIterable, Sendable {
    /// AMD PCnet-PCI II, 10 Mbit/s, no MII.
    case am79C970A = "am79c970a"
    /// AMD PCnet-FAST III, 10/100 Mbit/s, internal PHY on the MII (VirtualBox's default adapter).
    case am79C973 = "am79c973"

    /// The low half of the chip ID (CSR88); Linux checks `(id & 0xfff) == 3` and the part number above it.
    var chipIDLow: UInt16 { self == .am79C970A ? 0x1003 : 0x5003 }
    /// The high half of the chip ID (CSR89).
    var chipIDHigh: UInt16 { 0x0262 }
    /// Whether the chip has the MII management interface.
    var hasMII: Bool { self == .am79C973 }

    /// The PCI identity: 1022:2000, revision as VirtualBox reports it.
    var identity: PCIIdentity {
        PCIIdentity(
            vendorID: 0x1022, deviceID: 0x2000, revisionID: self == .am79C970A ? 0x16 : 0x40,
            subsystemVendorID: 0x1022, subsystemID: 0x2000, interruptPin: 1, minimumGrant: 0x06,
            maximumLatency: 0xFF, status: [.devselMedium, .fastBackToBack])
    }
}
