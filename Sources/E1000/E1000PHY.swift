import NICCore

/// The Marvell gigabit PHY (M88E1000 on the 82543GC, M88E1011 on the 82540EM/82545EM) as its 32 MII registers.
///
/// Link status, autonegotiation complete, the link partner's abilities and the PHY-specific status follow the cable.
/// Control bits 15 (reset) and 9 (restart autonegotiation) clear themselves.
struct E1000PHY {
    /// The only PHY address that answers.
    static let address = 1

    enum Register: Int {
        case control = 0
        case status, identifier1, identifier2, autonegotiationAdvertisement, linkPartnerAbility
        case autonegotiationExpansion
        case gigabitControl = 9
        case gigabitStatus
        case extendedStatus = 15
        case specificControl, specificStatus
        case extendedSpecificControl = 20
    }

    enum Control: UInt16, RegisterBit {
        case restartAutonegotiation = 9
        case autonegotiationEnable = 12
        case loopback = 14
        case reset
    }

    enum Status: UInt16, RegisterBit {
        case linkUp = 2
        case autonegotiationComplete = 5

        /// 100BASE-TX/10BASE-T full and half duplex, extended status, preamble suppression, autonegotiation
        /// ability, extended capabilities.
        static let capabilities: UInt16 = 0x7949
    }

    /// Registers the guest cannot write.
    private static let readOnly: Set<Int> = [1, 2, 3, 5, 6, 10, 15, 17, 19]

    private(set) var registers: [UInt16]
    let identifier2: UInt16
    private(set) var linkUp = false

    init(identifier2: UInt16) {
        self.identifier2 = identifier2
        registers = [UInt16](repeating: 0, count: 32)
        reset()
    }

    /// Power-on values (hardware or software PHY reset).
    mutating func reset() {
        for index in registers.indices { registers[index] = 0 }
        self[.control] = 0x1140  // autonegotiation on, full duplex, 1000 Mb/s
        self[.identifier1] = 0x0141
        self[.identifier2] = identifier2
        self[.autonegotiationAdvertisement] = 0x0DE1
        self[.gigabitControl] = 0x0E00
        self[.extendedStatus] = 0x3000
        self[.specificControl] = 0x0068
        self[.extendedSpecificControl] = 0x0C60
        refreshLink()
    }

    /// Follows the cable.
    mutating func setLink(up: Bool) {
        linkUp = up
        refreshLink()
    }

    private mutating func refreshLink() {
        self[.status] =
            Status.capabilities | (linkUp ? Status.linkUp.mask | Status.autonegotiationComplete.mask : 0)
        self[.linkPartnerAbility] = linkUp ? 0x45E1 : 0
        self[.autonegotiationExpansion] = linkUp ? 0x0001 : 0
        self[.gigabitStatus] = linkUp ? 0x3C00 : 0
        // 1000 Mb/s, full duplex, speed and duplex resolved, real-time link.
        self[.specificStatus] = linkUp ? 0xAC00 : 0
    }

    /// Register `register`.
    private subscript(_ register: Register) -> UInt16 {
        get { registers[register.rawValue] }
        set { registers[register.rawValue] = newValue }
    }

    /// Whether the guest put the PHY in loopback.
    var loopback: Bool { self[.control] & Control.loopback.mask != 0 }

    func read(_ register: Int) -> UInt16 {
        guard register >= 0, register < registers.count else { return 0 }
        return registers[register]
    }

    mutating func write(_ register: Int, _ value: UInt16) {
        guard register >= 0, register < registers.count, !Self.readOnly.contains(register) else { return }
        guard register == Register.control.rawValue else {
            registers[register] = value
            return
        }
        if value & Control.reset.mask != 0 {
            reset()
            self[.control] = value & ~(Control.reset.mask | Control.restartAutonegotiation.mask)
            return
        }
        self[.control] = value & ~Control.restartAutonegotiation.mask
        refreshLink()
    }
}
