import NICCore

/// The Intel PRO/1000 chips this module models, named as the trace format and the CLI spell them.
public enum E1000Chip: String, CaseIterable, Sendable {
    /// PRO/1000 MT Desktop (8086:100E, subsystem 8086:001E): internal PHY, EERD, IOADDR/IODATA.
    case i82540EM = "82540em"
    /// PRO/1000 T Server (8086:1004, subsystem 8086:1004): external PHY bit-banged through CTRL, no EERD, no MDIC.
    case i82543GC = "82543gc"
    /// PRO/1000 MT Server (8086:100F, subsystem 15AD:0750): internal PHY, EERD, IOADDR/IODATA.
    case i82545EM = "82545em"

    /// The PCI device ID.
    public var deviceID: UInt16 {
        switch self {
        case .i82540EM: 0x100E
        case .i82543GC: 0x1004
        case .i82545EM: 0x100F
        }
    }

    /// The PCI subsystem vendor ID.
    public var subsystemVendorID: UInt16 {
        switch self {
        case .i82540EM, .i82543GC: 0x8086
        case .i82545EM: 0x15AD
        }
    }

    /// The PCI subsystem ID.
    public var subsystemID: UInt16 {
        switch self {
        case .i82540EM: 0x001E
        case .i82543GC: 0x1004
        case .i82545EM: 0x0750
        }
    }

    /// The PCI revision ID (VirtualBox's choice; not a datasheet value).
    public static let revisionID: UInt8 = 0x02

    /// The PCI identity as config space shows it.
    var identity: PCIIdentity {
        PCIIdentity(
            vendorID: 0x8086, deviceID: deviceID, revisionID: Self.revisionID, classCode: 0x02_0000,
            subsystemVendorID: subsystemVendorID, subsystemID: subsystemID, interruptPin: 1, minimumGrant: 0xFF,
            maximumLatency: 0x00, status: [.devselMedium, .fastBackToBack],
            writableCommand: [
                .ioSpace, .memorySpace, .busMaster, .memoryWriteInvalidate, .parityErrorResponse, .serrEnable,
            ])
    }

    /// The second PHY identifier word (the first is 0x0141, Marvell): M88E1011 for the 82540EM/82545EM, M88E1000
    /// for the 82543GC. Linux's `e1000_detect_gig_phy` refuses anything else.
    var phyIdentifier2: UInt16 { self == .i82543GC ? 0x0C50 : 0x0C20 }

    /// Whether the chip has the EEPROM read register (EERD) and the REQ/GNT handshake on EECD.
    var hasEEPROMReadRegister: Bool { self != .i82543GC }

    /// Whether the PHY is reached through MDIC (82540EM, 82545EM) rather than bit-banged through CTRL (82543GC).
    var hasMDIC: Bool { self != .i82543GC }

    /// The chip's bit in register-table presence sets.
    var presence: ChipSet {
        switch self {
        case .i82540EM: .i82540EM
        case .i82543GC: .i82543GC
        case .i82545EM: .i82545EM
        }
    }
}

/// A set of chips, for registers only some of them have.
struct ChipSet: OptionSet, Sendable {
    var rawValue: UInt8

    static let i82540EM = ChipSet(rawValue: 1 << 0)
    static let i82543GC = ChipSet(rawValue: 1 << 1)
    static let i82545EM = ChipSet(rawValue: 1 << 2)
    static let all: ChipSet = [.i82540EM, .i82543GC, .i82545EM]
    /// The 82540 generation and later: EERD, MDIC, RADV, TADV.
    static let internalPHY: ChipSet = [.i82540EM, .i82545EM]
}
