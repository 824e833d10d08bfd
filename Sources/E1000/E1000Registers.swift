import NICCore

/// What reading or writing a register does beyond storing bits through its masks.
enum RegisterKind: Sendable {
    /// Plain storage through the read and write masks.
    case storage
    /// A statistics counter: cleared by a read, writes ignored.
    case statistic
    /// The high half of a 64-bit statistics counter: a read clears both halves.
    case statisticHigh
    /// Read-only, computed on read (STATUS).
    case status
    /// CTRL: RST, PHY_RST and (82543GC) the MDIO pins.
    case control
    /// EECD: the EEPROM's pins and the REQ/GNT handshake.
    case eepromControl
    /// EERD: a word read started by the START bit.
    case eepromRead
    /// CTRL_EXT: SDP4 resets the 82543GC's PHY.
    case extendedControl
    /// MDIC: one PHY register access per write.
    case mdiControl
    /// ICR: cleared by a read; a write of one clears.
    case interruptCause
    /// ICS: a write sets causes; reads 0.
    case interruptSet
    /// IMS: a write of one unmasks; reads the mask.
    case interruptMaskSet
    /// IMC: a write of one masks; reads 0.
    case interruptMaskClear
    /// ITR: the minimum interval between interrupts.
    case interruptThrottle
    /// RCTL: receiver enable, filters, buffer sizes.
    case receiveControl
    /// TCTL: transmitter enable.
    case transmitControl
    /// RDT: the guest hands receive descriptors over.
    case receiveTail
    /// TDT: the transmit doorbell.
    case transmitTail
    /// RDTR: the receive packet timer and its flush bit.
    case receiveDelayTimer
    /// RAL/RAH: the exact-match address filter.
    case receiveAddress
}

/// One row of the register table: a register or an array of consecutive 32-bit registers.
struct RegisterDefinition: Sendable {
    /// Byte offset in BAR0 of the first register.
    let offset: Int
    /// Number of consecutive 32-bit registers (1 unless an array).
    let count: Int
    let name: String
    let reset: UInt32
    /// Bits a read returns (storage kinds).
    let readMask: UInt32
    /// Bits a write changes.
    let writeMask: UInt32
    let kind: RegisterKind
    /// The chips that have the register; the others read 0 and ignore writes there.
    let chips: ChipSet

    init(
        _ offset: Int, _ name: String, reset: UInt32 = 0, read: UInt32 = .max, write: UInt32 = .max,
        _ kind: RegisterKind = .storage, count: Int = 1, chips: ChipSet = .all
    ) {
        self.offset = offset
        self.count = count
        self.name = name
        self.reset = reset
        self.readMask = read
        self.writeMask = write
        self.kind = kind
        self.chips = chips
    }
}

/// The register file of BAR0 (and of the IOADDR/IODATA window), as a table. Offsets from the 8254x software
/// developer's manual; statistics from Linux's `e1000_hw.h`.
enum RegisterTable {
    static let definitions: [RegisterDefinition] =
        [
            .init(0x0000, "CTRL", reset: 0x0000_0241, write: 0xFFFF_FFFF, .control),
            .init(0x0008, "STATUS", write: 0, .status),
            .init(0x0010, "EECD", write: EECD.writable, .eepromControl),
            .init(0x0014, "EERD", write: 0x0000_FF01, .eepromRead, chips: .internalPHY),
            .init(0x0018, "CTRL_EXT", write: 0x0FFF_FFFF, .extendedControl),
            .init(0x001C, "FLA"),
            .init(0x0020, "MDIC", write: 0x3FFF_FFFF, .mdiControl, chips: .internalPHY),
            .init(0x0028, "FCAL"),
            .init(0x002C, "FCAH", write: 0xFFFF),
            .init(0x0030, "FCT", write: 0xFFFF),
            .init(0x0038, "VET", reset: 0x8100, write: 0xFFFF),
            .init(0x00C0, "ICR", write: 0, .interruptCause),
            .init(0x00C4, "ITR", write: 0xFFFF, .interruptThrottle),
            .init(0x00C8, "ICS", read: 0, write: ICR.all, .interruptSet),
            .init(0x00D0, "IMS", write: ICR.all, .interruptMaskSet),
            .init(0x00D8, "IMC", read: 0, write: ICR.all, .interruptMaskClear),
            .init(0x0100, "RCTL", write: 0x07FF_FFFE, .receiveControl),
            .init(0x0170, "FCTTV", write: 0xFFFF),
            .init(0x0178, "TXCW"),
            .init(0x0180, "RXCW"),
            .init(0x0400, "TCTL", reset: 0x0004_0108, write: 0x03FF_FFFE, .transmitControl),
            .init(0x0410, "TIPG", reset: 0x0060_200A, write: 0x3FFF_FFFF),
            .init(0x0458, "AIT", write: 0xFFFF),
            .init(0x0E00, "LEDCTL", reset: 0x0706_8302),
            .init(0x1000, "PBA", reset: 0x0000_0030, write: 0xFFFF),
            .init(0x2160, "FCRTL", write: 0x8000_FFF8),
            .init(0x2168, "FCRTH", write: 0xFFF8),
            .init(0x2C00, "RSRPD", write: 0x0FFF),
            .init(0x3000, "TXDMAC", reset: 0x1, write: 0x1),
            .init(0x3830, "TSPMT", reset: 0x0100_0400),
            .init(0x5000, "RXCSUM", reset: RXCSUM.ipOffload.mask | RXCSUM.tcpUDPOffload.mask, write: 0x3FF),
            .init(0x5200, "MTA", count: 128),
            .init(0x5400, "RA", .receiveAddress, count: 32),
            .init(0x5600, "VFTA", count: 128),
            .init(0x5800, "WUC", write: 0xF),
            .init(0x5808, "WUFC", write: 0x000F_00FF),
            .init(0x5810, "WUS", write: 0),
            .init(0x5820, "MANC"),
            .init(0x5838, "IPAV", write: 0x0001_000F),
            .init(0x5840, "IP4AT", count: 8),
            .init(0x5880, "IP6AT", count: 4),
            .init(0x5900, "WUPL", write: 0),
            .init(0x5A00, "WUPM", write: 0, count: 32),
            .init(0x5F00, "FFLT", write: 0x7FF, count: 8),
            .init(0x9000, "FFMT", count: 256),
            .init(0x9800, "FFVT", count: 256),
        ] + dataUnit("R", at: 0x2000, tail: .receiveTail, delay: ("RDTR", .receiveDelayTimer), control: 0x013F_3F3F)
        + dataUnit("T", at: 0x3000, tail: .transmitTail, delay: ("TIDV", .storage), control: 0x017F_3F3F) + statistics

    /// The registers the receive (`R`, base 0x2000) and transmit (`T`, base 0x3000) units lay out alike: the data
    /// FIFO's head, tail, saved head, saved tail and packet count from +0x410; the descriptor ring's base, length,
    /// head and tail from +0x800; then the interrupt delay (RDTR, TIDV), the descriptor control with its writable
    /// bits `control`, and the absolute delay of the chips with an internal PHY.
    private static func dataUnit(
        _ prefix: String, at base: Int, tail: RegisterKind, delay: (name: String, kind: RegisterKind), control: UInt32
    ) -> [RegisterDefinition] {
        let fifo = ["DFH", "DFT", "DFHS", "DFTS", "DFPC"].enumerated().map { index, name in
            RegisterDefinition(base + 0x410 + 8 * index, prefix + name, write: 0x1FFF)
        }
        return fifo + [
            RegisterDefinition(base + 0x800, prefix + "DBAL", write: 0xFFFF_FFF0),
            RegisterDefinition(base + 0x804, prefix + "DBAH"),
            RegisterDefinition(base + 0x808, prefix + "DLEN", write: 0x000F_FF80),
            RegisterDefinition(base + 0x810, prefix + "DH", write: 0xFFFF),
            RegisterDefinition(base + 0x818, prefix + "DT", write: 0xFFFF, tail),
            RegisterDefinition(base + 0x820, delay.name, write: 0xFFFF, delay.kind),
            RegisterDefinition(base + 0x828, prefix + "XDCTL", reset: 0x0001_0000, write: control),
            RegisterDefinition(base + 0x82C, prefix + "ADV", write: 0xFFFF, chips: .internalPHY),
        ]
    }

    /// The statistics block 0x4000-0x40FF: every counter clears when read (a 64-bit counter when its high half is).
    static let statistics: [RegisterDefinition] = [
        (0x4000, "CRCERRS"), (0x4004, "ALGNERRC"), (0x4008, "SYMERRS"), (0x400C, "RXERRC"), (0x4010, "MPC"),
        (0x4014, "SCC"), (0x4018, "ECOL"), (0x401C, "MCC"), (0x4020, "LATECOL"), (0x4028, "COLC"), (0x4030, "DC"),
        (0x4034, "TNCRS"), (0x4038, "SEC"), (0x403C, "CEXTERR"), (0x4040, "RLEC"), (0x4048, "XONRXC"),
        (0x404C, "XONTXC"), (0x4050, "XOFFRXC"), (0x4054, "XOFFTXC"), (0x4058, "FCRUC"), (0x405C, "PRC64"),
        (0x4060, "PRC127"), (0x4064, "PRC255"), (0x4068, "PRC511"), (0x406C, "PRC1023"), (0x4070, "PRC1522"),
        (0x4074, "GPRC"), (0x4078, "BPRC"), (0x407C, "MPRC"), (0x4080, "GPTC"), (0x4088, "GORCL"),
        (0x408C, "GORCH"), (0x4090, "GOTCL"), (0x4094, "GOTCH"), (0x40A0, "RNBC"), (0x40A4, "RUC"),
        (0x40A8, "RFC"), (0x40AC, "ROC"), (0x40B0, "RJC"), (0x40B4, "MGTPRC"), (0x40B8, "MGTPDC"),
        (0x40BC, "MGTPTC"), (0x40C0, "TORL"), (0x40C4, "TORH"), (0x40C8, "TOTL"), (0x40CC, "TOTH"),
        (0x40D0, "TPR"), (0x40D4, "TPT"), (0x40D8, "PTC64"), (0x40DC, "PTC127"), (0x40E0, "PTC255"),
        (0x40E4, "PTC511"), (0x40E8, "PTC1023"), (0x40EC, "PTC1522"), (0x40F0, "MPTC"), (0x40F4, "BPTC"),
        (0x40F8, "TSCTC"), (0x40FC, "TSCTFC"),
    ].map { offset, name in
        RegisterDefinition(offset, name, write: 0, kind(ofStatistic: name))
    }

    /// The low half of a 64-bit octet counter reads without clearing; its high half clears both.
    private static func kind(ofStatistic name: String) -> RegisterKind {
        switch name {
        case "GORCL", "GOTCL", "TORL", "TOTL": .storage
        case "GORCH", "GOTCH", "TORH", "TOTH": .statisticHigh
        default: .statistic
        }
    }

    /// Dword index in BAR0 (offset / 4) to table row + 1; 0 for an unknown offset.
    static let lookup: [UInt16] = {
        var lookup = [UInt16](repeating: 0, count: E1000Card.registerWords)
        for (row, definition) in definitions.enumerated() {
            for i in 0..<definition.count { lookup[definition.offset / 4 + i] = UInt16(row + 1) }
        }
        return lookup
    }()

    /// The table row for dword `index` on `chip`, or `nil` if the chip has no register there.
    @inline(__always)
    static func definition(at index: Int, chip: ChipSet) -> RegisterDefinition? {
        guard index >= 0, index < lookup.count else { return nil }
        let row = Int(lookup[index])
        guard row > 0 else { return nil }
        let definition = definitions[row - 1]
        return definition.chips.contains(chip) ? definition : nil
    }

    /// The row named `name` (tests and tools).
    static func definition(named name: String) -> RegisterDefinition? { definitions.first { $0.name == name } }
}

/// Dword indexes (byte offset / 4) of the registers the card's logic uses.
enum Reg {
    static let ctrl = 0x0000 >> 2
    static let status = 0x0008 >> 2
    static let eecd = 0x0010 >> 2
    static let eerd = 0x0014 >> 2
    static let ctrlExt = 0x0018 >> 2
    static let mdic = 0x0020 >> 2
    static let vet = 0x0038 >> 2
    static let icr = 0x00C0 >> 2
    static let itr = 0x00C4 >> 2
    static let ims = 0x00D0 >> 2
    static let rctl = 0x0100 >> 2
    static let tctl = 0x0400 >> 2
    static let rdbal = 0x2800 >> 2
    static let rdbah = 0x2804 >> 2
    static let rdlen = 0x2808 >> 2
    static let rdh = 0x2810 >> 2
    static let rdt = 0x2818 >> 2
    static let rdtr = 0x2820 >> 2
    static let radv = 0x282C >> 2
    static let tdbal = 0x3800 >> 2
    static let tdbah = 0x3804 >> 2
    static let tdlen = 0x3808 >> 2
    static let tdh = 0x3810 >> 2
    static let tdt = 0x3818 >> 2
    static let tidv = 0x3820 >> 2
    static let tadv = 0x382C >> 2
    static let rxcsum = 0x5000 >> 2
    static let mta = 0x5200 >> 2
    static let ra = 0x5400 >> 2
    static let vfta = 0x5600 >> 2

    // Statistics.
    static let crcerrs = 0x4000 >> 2
    static let mpc = 0x4010 >> 2
    static let rlec = 0x4040 >> 2
    static let prc64 = 0x405C >> 2
    static let gprc = 0x4074 >> 2
    static let bprc = 0x4078 >> 2
    static let mprc = 0x407C >> 2
    static let gptc = 0x4080 >> 2
    static let gorcl = 0x4088 >> 2
    static let gotcl = 0x4090 >> 2
    static let rnbc = 0x40A0 >> 2
    static let ruc = 0x40A4 >> 2
    static let roc = 0x40AC >> 2
    static let torl = 0x40C0 >> 2
    static let totl = 0x40C8 >> 2
    static let tpr = 0x40D0 >> 2
    static let tpt = 0x40D4 >> 2
    static let ptc64 = 0x40D8 >> 2
    static let mptc = 0x40F0 >> 2
    static let bptc = 0x40F4 >> 2
    static let tsctc = 0x40F8 >> 2
    static let tsctfc = 0x40FC >> 2
}

/// CTRL bits.
enum CTRL: UInt32, RegisterBit {
    case fullDuplex = 0
    case setLinkUp = 6
    /// 82543GC MDIO pins: data on SDP2, clock on SDP3, and their direction bits (1 = driven by the MAC).
    case mdio = 20
    case mdc
    case mdioDirection = 24
    case mdcDirection, reset
    case vlanMode = 30
    case phyReset
}

/// STATUS bits.
enum STATUS: UInt32, RegisterBit {
    case fullDuplex = 0
    case linkUp

    /// SPEED: 0 for 10, 1 for 100, 2 for 1000 Mb/s.
    static var speed: RegisterField<UInt32> { .init(shift: 6, width: 2) }
}

/// EECD bits.
enum EECD: UInt32, RegisterBit {
    case clock = 0
    case chipSelect, dataIn, dataOut
    case request = 6
    case grant, present

    /// FWE: flash write enable.
    static var flashWriteEnable: RegisterField<UInt32> { .init(shift: 4, width: 2) }
    static var writable: UInt32 { clock.mask | chipSelect.mask | dataIn.mask | flashWriteEnable.mask | request.mask }
}

/// EERD fields.
enum EERD: UInt32, RegisterBit {
    case start = 0
    case done = 4
}

/// CTRL_EXT bits.
enum CTRLEXT: UInt32, RegisterBit {
    /// SDP4 data and direction: the 82543GC's PHY reset pin (low while driven = reset).
    case sdp4Data = 4
    case sdp4Direction = 8
}

/// MDIC fields.
enum MDIC: UInt32, RegisterBit {
    case ready = 28
    case interruptEnable, error

    /// OP: 1 writes the PHY register, 2 reads it.
    static var op: RegisterField<UInt32> { .init(shift: 26, width: 2) }
    static let opWrite: UInt32 = 1
    static let opRead: UInt32 = 2
}

/// Interrupt causes (ICR, ICS, IMS, IMC).
enum ICR: UInt32, RegisterBit {
    case transmitDescriptorWritten = 0
    case transmitQueueEmpty, linkStatusChange, receiveSequenceError, receiveDescriptorMinimum
    case receiveOverrun = 6
    case receiveTimer
    case mdioAccessComplete = 9

    /// Every cause bit the 8254x defines.
    static let all: UInt32 = 0x0001_FFFF
}

/// RCTL bits and fields.
enum RCTL: UInt32, RegisterBit {
    case enable = 1
    case storeBadPackets, unicastPromiscuous, multicastPromiscuous, longPackets
    case broadcastAccept = 15
    case vlanFilter = 18
    case bufferSizeExtension = 25
    case stripCRC

    /// LBM: loopback mode (0 = none).
    static var loopback: RegisterField<UInt32> { .init(shift: 6, width: 2) }
    /// RDMTS: the free-descriptor threshold, as a fraction 1/2, 1/4 or 1/8 of the ring.
    static var minimumThreshold: RegisterField<UInt32> { .init(shift: 8, width: 2) }
    /// MO: which destination bits index the multicast table.
    static var multicastOffset: RegisterField<UInt32> { .init(shift: 12, width: 2) }
    /// BSIZE: the receive buffer size (scaled by BSEX).
    static var bufferSize: RegisterField<UInt32> { .init(shift: 16, width: 2) }
}

/// TCTL bits.
enum TCTL: UInt32, RegisterBit {
    case enable = 1
    case padShortPackets = 3
}

/// RDTR bits.
enum RDTR: UInt32, RegisterBit {
    case flushPartial = 31
}

/// RXCSUM bits.
enum RXCSUM: UInt32, RegisterBit {
    case ipOffload = 8
    case tcpUDPOffload
}

/// RAH bits.
enum RAH: UInt32, RegisterBit {
    case addressValid = 31
}
