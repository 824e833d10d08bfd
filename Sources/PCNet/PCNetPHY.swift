import NICCore

/// The Am79C973's internal 10/100 PHY as the MII management interface (BCR33/BCR34) sees it: an AMD Am79C874-style
/// register set with ID 0x0022:0x561B at PHY address 0x1E. Other addresses read all-ones.
struct PCNetPHY {
    /// The PHY address the internal PHY answers at.
    static let address = 0x1E

    private static let controlReset: UInt16 = 0x3100  // 100 Mbit/s, autonegotiation, full duplex
    private static let advertisementReset: UInt16 = 0x01E1  // 10/100, half/full, IEEE 802.3

    private var control = PCNetPHY.controlReset
    private var advertisement = PCNetPHY.advertisementReset
    /// BMSR link status latches low until read.
    private var linkLatchedDown = true

    /// Reads `register` of the PHY at `phyAddress`. `macControl` is BCR32: unless its DANAS bit is set, the MAC
    /// drives autonegotiation, speed and duplex from it.
    mutating func read(phyAddress: Int, register: Int, linkUp: Bool, macControl: UInt16) -> UInt16 {
        guard phyAddress == Self.address else { return 0xFFFF }
        let isolated = control & 0x0400 != 0
        let link = linkUp && !isolated
        let (autoNegotiate, fullDuplex, fast) = mode(macControl)
        switch register {
        case 0:
            var value = control & ~UInt16(0x3100)
            if autoNegotiate { value |= 0x1000 }
            if fast { value |= 0x2000 }
            if fullDuplex { value |= 0x0100 }
            return value
        case 1:
            var value: UInt16 = 0x7800 | 0x0040 | 0x0008 | 0x0001
            if link && !linkLatchedDown { value |= 0x0004 }
            if link && autoNegotiate { value |= 0x0020 }
            if !autoNegotiate {
                value &= ~0x0008
                value &= fullDuplex ? ~0x2800 : ~0x5000
                value &= fast ? ~0x1800 : ~0x6000
            }
            linkLatchedDown = !link
            return value
        case 2: return 0x0022
        case 3: return 0x561B
        case 4: return advertisement
        case 5: return link ? 0x4000 | 0x0400 | 0x01E0 | 0x0001 : 0
        case 6: return link ? 0x0001 : 0
        case 18:
            // Diagnostic register: PLL locked, signal detect, and the resolved speed and duplex.
            guard link else { return 0 }
            var value: UInt16 = 0x0300
            if autoNegotiate || fast { value |= 0x0400 }
            if autoNegotiate || fullDuplex { value |= 0x0800 }
            return value
        default: return 0
        }
    }

    /// Writes `register` of the PHY at `phyAddress`.
    mutating func write(phyAddress: Int, register: Int, value: UInt16) {
        guard phyAddress == Self.address else { return }
        switch register {
        case 0:
            if value & 0x8000 != 0 {
                self = PCNetPHY()
                return
            }
            control = value & ~0x0200  // restart autonegotiation completes at once
        case 4:
            advertisement = (value & 0x03E0) | 0x0001
        default:
            break
        }
    }

    /// Records a link change: a drop latches BMSR's link bit low until the next read.
    mutating func linkChanged(up: Bool) {
        if !up { linkLatchedDown = true }
    }

    private func mode(_ macControl: UInt16) -> (autoNegotiate: Bool, fullDuplex: Bool, fast: Bool) {
        if macControl & BCR32.disableAutoNegotiationControl.mask != 0 {
            return (control & 0x1000 != 0, control & 0x0100 != 0, control & 0x2000 != 0)
        }
        let autoNegotiate = macControl & BCR32.autoNegotiationEnable.mask != 0
        if autoNegotiate { return (true, true, true) }
        return (false, macControl & BCR32.fullDuplex.mask != 0, macControl & BCR32.speed100.mask != 0)
    }
}
