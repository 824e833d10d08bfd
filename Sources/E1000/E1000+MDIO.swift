import NICCore

/// The 82543GC's MII management frame, bit-banged by software on CTRL's SDP2 (MDIO) and SDP3 (MDC) pins.
///
/// Each rising edge of MDC moves one bit. A frame is a preamble of ones, start (01), opcode (10 read, 01 write), a
/// five-bit PHY address and a five-bit register: 14 bits after the preamble. For a read the PHY then owns MDIO: after
/// the first turnaround edge it drives 0, and after each of the next 16 edges the next data bit, most significant
/// first (Linux's `e1000_shift_in_mdi_bits` samples right after each rising edge). A write carries a turnaround
/// (10) and 16 data bits. Only PHY address 1 answers; otherwise MDIO floats high and reads all-ones.
struct MDIOBitBang {
    private enum State {
        case idle
        case header(bits: UInt32, count: Int)
        case turnaround(value: UInt16)
        case reading(value: UInt16, bit: Int)
        case writing(phy: Int, register: Int, bits: UInt32, count: Int)
    }

    private var state = State.idle
    private var clock = false
    /// The level the PHY drives on MDIO (high when nothing drives it).
    private(set) var output = true

    mutating func reset() {
        state = .idle
        clock = false
        output = true
    }

    /// Applies a CTRL write: `hostDrives` is MDIO's direction bit, `data` its data bit, `clock` MDC.
    mutating func drive(clock newClock: Bool, hostDrives: Bool, data: Bool, phy: inout E1000PHY) {
        defer { clock = newClock }
        guard newClock, !clock else { return }
        let bit: UInt32 = data ? 1 : 0
        switch state {
        case .idle:
            output = true
            if hostDrives, !data { state = .header(bits: 0, count: 1) }
        case .header(let bits, let count):
            guard hostDrives else {
                state = .idle
                return
            }
            let bits = bits << 1 | bit
            guard count + 1 == 14 else {
                state = .header(bits: bits, count: count + 1)
                return
            }
            let start = bits >> 12
            let opcode = (bits >> 10) & 3
            let phyAddress = Int((bits >> 5) & 0x1F)
            let register = Int(bits & 0x1F)
            switch (start, opcode) {
            case (1, 2):
                let answers = phyAddress == E1000PHY.address
                state = .turnaround(value: answers ? phy.read(register) : 0xFFFF)
            case (1, 1):
                state = .writing(phy: phyAddress, register: register, bits: 0, count: 0)
            default:
                state = .idle
            }
        case .turnaround(let value):
            output = value == 0xFFFF ? true : false
            state = .reading(value: value, bit: 15)
        case .reading(let value, let index):
            if hostDrives {
                // The host took the line back: a new frame may start with this bit.
                state = .idle
                output = true
                return
            }
            guard index >= 0 else {
                state = .idle
                output = true
                return
            }
            output = value & (1 << UInt16(index)) != 0
            state = .reading(value: value, bit: index - 1)
        case .writing(let phyAddress, let register, let bits, let count):
            let bits = bits << 1 | bit
            guard count + 1 == 18 else {
                state = .writing(phy: phyAddress, register: register, bits: bits, count: count + 1)
                return
            }
            if phyAddress == E1000PHY.address { phy.write(register, UInt16(truncatingIfNeeded: bits)) }
            state = .idle
        }
    }
}

extension E1000Card {
    /// A write to MDIC (82540EM, 82545EM): the access completes at once; READY is set, ERROR too for any PHY address
    /// but 1, and MDAC is raised when the interrupt-enable bit asks for it.
    func writeMDIControl(_ value: UInt32) {
        let phyAddress = Int((value >> 21) & 0x1F)
        let register = Int((value >> 16) & 0x1F)
        let opcode = MDIC.op.value(in: value)
        var result = value & ~(MDIC.ready.mask | MDIC.error.mask)
        if phyAddress != E1000PHY.address || (opcode != MDIC.opRead && opcode != MDIC.opWrite) {
            result |= MDIC.error.mask
        } else if opcode == MDIC.opRead {
            result = (result & ~0xFFFF) | UInt32(phy.read(register))
        } else {
            phy.write(register, UInt16(truncatingIfNeeded: value))
        }
        regs[Reg.mdic] = result | MDIC.ready.mask
        if value & MDIC.interruptEnable.mask != 0 { raise(ICR.mdioAccessComplete.mask) }
    }

    /// The 82543GC's MDIO pins after a CTRL write.
    func driveMDIO(_ control: UInt32) {
        guard chip == .i82543GC else { return }
        mdio.drive(
            clock: control & CTRL.mdc.mask != 0, hostDrives: control & CTRL.mdioDirection.mask != 0,
            data: control & CTRL.mdio.mask != 0, phy: &phy)
    }
}
