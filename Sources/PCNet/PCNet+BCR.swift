import NICCore

/// BCR2 bits.
enum BCR2: UInt16, RegisterBit {
    case apromWriteEnable = 8
}

/// BCR18 bits.
enum BCR18: UInt16, RegisterBit {
    /// Double-word I/O mode; set only by a 32-bit write to RDP, cleared by H_RESET.
    case doubleWordIO = 7
}

/// BCR20 (software style) bits.
enum BCR20: UInt16, RegisterBit {
    /// 32-bit software structures.
    case softwareSize32 = 8
    /// PCnet-PCI register layout (set for style 0).
    case csrPCnet

    /// SWSTYLE: the software style.
    static var style: RegisterField<UInt16> { .init(shift: 0, width: 8) }
}

/// BCR32 (MII control and status) bits on the Am79C973.
enum BCR32: UInt16, RegisterBit {
    case speed100 = 3
    case fullDuplex, autoNegotiationEnable
    /// Disable automatic negotiation control by the MAC: software programs the PHY.
    case disableAutoNegotiationControl = 7
}

/// How a BCR behaves on access.
enum BCRAccess {
    /// Reads back what is stored; writes are ignored.
    case readOnly
    /// Writable through the mask.
    case readWrite(UInt16)
    /// An LED register: bit 15 reads the link state through the register's enable bits.
    case led
    /// BCR20: writable only while stopped; the style is normalised.
    case softwareStyle
    /// BCR34: the data port of the MII management interface.
    case miiData
    /// BCR31: the software timer value (Am79C973).
    case softwareTimer
}

/// The BCR map per chip: reset values and access rules (BCR0...49).
enum BCRTable {
    static let count = 50

    static func access(_ index: Int, chip: PCNetChip) -> BCRAccess {
        switch index {
        case 2: return .readWrite(0xFFFE)
        case 4...7: return .led
        case 9: return .readWrite(0x0007)
        case 18: return .readWrite(0xFFFF & ~BCR18.doubleWordIO.mask)
        case 19: return .readWrite(0x001F)
        case 20: return .softwareStyle
        case 22: return .readWrite(0xFFFF)
        case 25...30 where chip == .am79C973: return .readWrite(0xFFFF)
        case 31 where chip == .am79C973: return .softwareTimer
        case 32 where chip == .am79C973: return .readWrite(0xFFFF)
        case 33 where chip == .am79C973: return .readWrite(0x03FF)
        case 34: return .miiData
        default: return .readOnly
        }
    }

    static func resetValue(_ index: Int, chip: PCNetChip) -> UInt16 {
        switch index {
        case 0, 1: return 0x0005
        case 2: return 0x0002
        case 4: return 0x00C0
        case 5: return 0x0084
        case 6: return 0x0088
        case 7: return 0x0090
        case 18: return 0x9001
        case 19: return 0x0002
        case 20: return BCR20.csrPCnet.mask
        case 22: return 0xFF06
        case 23: return chip.identity.subsystemVendorID
        case 24: return chip.identity.subsystemID
        case 31 where chip == .am79C973: return 0xFFFF
        case 32 where chip == .am79C973: return BCR32.autoNegotiationEnable.mask
        case 33 where chip == .am79C973: return UInt16(PCNetPHY.address) << 5
        case 35 where chip == .am79C973: return chip.identity.vendorID
        default: return 0
        }
    }
}

extension PCNetCard {
    /// Reads BCR `index`; registers beyond the map read 0.
    func readBCR(_ index: Int) -> UInt16 {
        let index = index & 0x7F
        guard index < BCRTable.count else { return 0 }
        switch BCRTable.access(index, chip: chip) {
        case .led:
            // LEDOUT (bit 15) is the OR of the enabled status signals; the link status enable is bit 6.
            let value = bcr[index] & 0x7FFF
            return linkUp && value & 0x0040 != 0 ? value | 0x8000 : value
        case .miiData:
            guard chip.hasMII else { return 0xFFFF }
            let address = bcr[33]
            return phy.read(
                phyAddress: Int(address >> 5) & 0x1F, register: Int(address) & 0x1F, linkUp: linkUp,
                macControl: bcr[32])
        default:
            return bcr[index]
        }
    }

    /// Writes BCR `index` following the BCR map.
    func writeBCR(_ index: Int, _ value: UInt16) {
        let index = index & 0x7F
        guard index < BCRTable.count else { return }
        switch BCRTable.access(index, chip: chip) {
        case .readOnly:
            return
        case .readWrite(let mask):
            bcr[index] = (bcr[index] & ~mask) | (value & mask)
        case .led:
            bcr[index] = value & 0x7FFF
        case .softwareStyle:
            guard stoppedOrSuspended else { return }
            bcr[20] = Self.normalisedSoftwareStyle(value)
        case .miiData:
            guard chip.hasMII else { return }
            let address = bcr[33]
            phy.write(phyAddress: Int(address >> 5) & 0x1F, register: Int(address) & 0x1F, value: value)
        case .softwareTimer:
            bcr[31] = value
            armSoftwareTimer()
        }
    }

    /// BCR20 as the chip stores a written style: SSIZE32 and CSRPCNET follow the style; unknown styles become 0.
    static func normalisedSoftwareStyle(_ value: UInt16) -> UInt16 {
        switch BCR20.style.value(in: value) {
        case 0: return BCR20.csrPCnet.mask
        case 1: return 1 | BCR20.softwareSize32.mask
        case 2, 3: return BCR20.style.value(in: value) | BCR20.softwareSize32.mask | BCR20.csrPCnet.mask
        default: return BCR20.csrPCnet.mask
        }
    }

    /// The software style in effect (BCR20 bits 7:0).
    var softwareStyle: Int { Int(BCR20.style.value(in: bcr[20])) }
    /// Whether software structures are 32-bit (BCR20.SSIZE32).
    var softwareSize32: Bool { bcr[20] & BCR20.softwareSize32.mask != 0 }
}
