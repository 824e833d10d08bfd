import NICCore
import NICTrace

/// The Intel PRO/1000 family's fuzz operations: register accesses anywhere in the 128 KiB window (biased towards the
/// registers that matter), the IOADDR/IODATA window, a bring-up macro, descriptors of every kind, doorbells, and
/// EEPROM and MDIO bit-banging.
extension FuzzDecoder {
    /// The registers a random offset is drawn from half of the time.
    static let e1000Registers: [UInt64] = [
        0x0000, 0x0008, 0x0010, 0x0014, 0x0018, 0x0020, 0x0038, 0x00C0, 0x00C4, 0x00C8, 0x00D0, 0x00D8, 0x0100,
        0x0400, 0x0410, 0x1000, 0x2800, 0x2804, 0x2808, 0x2810, 0x2818, 0x2820, 0x2828, 0x282C, 0x3800, 0x3804,
        0x3808, 0x3810, 0x3818, 0x3820, 0x3828, 0x382C, 0x4000, 0x4010, 0x4074, 0x40C0, 0x5000, 0x5200, 0x5400,
        0x5404, 0x5600,
    ]
    /// Where the bring-up macro puts the rings in fuzz RAM.
    static let e1000TransmitRing: UInt64 = 0x1000
    static let e1000ReceiveRing: UInt64 = 0x3000
    /// The I/O BAR (IOADDR at 0, IODATA at 4).
    static let e1000IOBAR = 2

    private mutating func e1000Offset() -> UInt64? {
        guard let selector = byte(), let raw = word(2) else { return nil }
        if selector & 1 == 0 { return Self.e1000Registers[Int(raw) % Self.e1000Registers.count] }
        return UInt64(raw) << 1 & 0x1FFFC | UInt64(selector >> 6)
    }

    private func register(_ offset: UInt64, _ value: UInt64) -> TraceOperation {
        .barWrite(.memory, bar: 0, offset: offset, width: 4, value: value & 0xFFFF_FFFF)
    }

    mutating func e1000Operation(_ opcode: UInt8) -> [TraceOperation]? {
        switch opcode % 14 {
        case 2:
            guard let offset = e1000Offset(), let width = width(), let value = word(4) else { return nil }
            let aligned = offset & ~UInt64(width - 1)
            return [.barWrite(.memory, bar: 0, offset: aligned, width: width, value: value & mask(width))]
        case 3:
            // Through IOADDR/IODATA, the way Linux resets the 82540EM and 82545EM.
            guard let offset = e1000Offset(), let value = word(4), let flags = byte() else { return nil }
            var operations: [TraceOperation] = [
                .barWrite(.io, bar: Self.e1000IOBAR, offset: 0, width: 4, value: offset)
            ]
            if flags & 1 == 0 {
                operations.append(.barWrite(.io, bar: Self.e1000IOBAR, offset: 4, width: 4, value: value & 0xFFFF_FFFF))
            } else {
                operations.append(
                    .barRead(.io, bar: Self.e1000IOBAR, offset: UInt64(flags >> 5), width: 4, expect: .none))
            }
            return operations
        case 4, 5:
            guard let offset = e1000Offset(), let width = width() else { return nil }
            return [.barRead(.memory, bar: 0, offset: offset & ~UInt64(width - 1), width: width, expect: .none)]
        case 10:
            return e1000BringUp()
        case 11:
            return e1000Descriptor()
        case 12:
            // A doorbell: TDT or RDT to a fuzzer-chosen index (sometimes beyond the ring).
            guard let which = byte(), let index = byte() else { return nil }
            return [register(which & 1 == 0 ? 0x3818 : 0x2818, UInt64(index) % (which & 2 == 0 ? 32 : 256))]
        default:
            // EEPROM or MDIO bit-banging: EECD or CTRL with fuzzer-chosen bits, a few clocks at a time.
            guard let which = byte(), let bits = word(4), let count = byte() else { return nil }
            let offset: UInt64 = which & 1 == 0 ? 0x0010 : 0x0000
            var operations: [TraceOperation] = []
            for step in 0..<Int(count % 16) {
                let clocked = bits ^ (step & 1 == 0 ? 0 : (offset == 0 ? 0x0020_0000 : 0x1))
                operations.append(register(offset, clocked & (offset == 0 ? ~UInt64(0x0400_0000) : 0xFFFF_FFFF)))
                operations.append(.barRead(.memory, bar: 0, offset: offset, width: 4, expect: .none))
            }
            return operations
        }
    }

    /// Enable the function, reset through the I/O window, set up both rings (lengths, heads and tails chosen by the
    /// fuzzer, sometimes invalid), RCTL and TCTL with fuzzer-chosen modes, and unmask fuzzer-chosen causes.
    private mutating func e1000BringUp() -> [TraceOperation]? {
        guard let lengths = byte(), let rctlBits = word(4), let tctlBits = byte(), let mask = word(2) else {
            return nil
        }
        let transmitLength = UInt64(lengths & 0x0F) * 128 + (lengths & 0x40 == 0 ? 0 : 8)
        let receiveLength = UInt64(lengths >> 4 & 0x03) * 1024 + 128 + (lengths & 0x80 == 0 ? 0 : 64)
        // EN | BAM plus long packets, buffer sizes, promiscuous modes, loopback, VLAN filter, CRC strip.
        let rctl = 0x8002 | (rctlBits & 0x0607_30F8)
        let tctl = 0x0103_F0FA | UInt64(tctlBits & 1) << 5
        return [
            .configWrite(offset: 4, width: 2, value: 0x0007),
            .barWrite(.io, bar: Self.e1000IOBAR, offset: 0, width: 4, value: 0),
            .barWrite(.io, bar: Self.e1000IOBAR, offset: 4, width: 4, value: 0x0400_0040),
            register(0x0000, 0x0000_0040 | (rctlBits >> 32 & 1) << 30),
            register(0x3800, Self.e1000TransmitRing),
            register(0x3804, 0),
            register(0x3808, transmitLength),
            register(0x3810, 0),
            register(0x3818, 0),
            register(0x2800, Self.e1000ReceiveRing),
            register(0x2804, 0),
            register(0x2808, receiveLength),
            register(0x2810, 0),
            register(0x2818, UInt64(lengths) % 16),
            register(0x0400, tctl),
            register(0x0100, rctl),
            register(0x00D0, mask),
        ]
    }

    /// A 16-byte descriptor in one of the rings: a receive buffer, a legacy transmit descriptor, or an extended
    /// context or data descriptor, with fuzzer-chosen addresses, lengths and command bits.
    private mutating func e1000Descriptor() -> [TraceOperation]? {
        guard let which = byte(), let buffer = address(), let length = word(2), let command = byte(),
            let extra = word(4)
        else { return nil }
        let index = UInt64(which & 0x1F)
        var body = [UInt8](repeating: 0, count: 16)
        func put(_ value: UInt64, at offset: Int, bytes count: Int) {
            for i in 0..<count { body[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        if which & 0x80 != 0 {
            put(buffer, at: 0, bytes: 8)
            return [.memoryWrite(address: Self.e1000ReceiveRing + index * 16, bytes: body)]
        }
        switch which >> 5 & 3 {
        case 0:
            // Legacy: length, CSO, CMD, status, CSS, special.
            put(buffer, at: 0, bytes: 8)
            put(length, at: 8, bytes: 2)
            body[10] = UInt8(truncatingIfNeeded: extra)
            body[11] = command & ~0x20
            body[13] = UInt8(truncatingIfNeeded: extra >> 8)
            put(extra >> 16, at: 14, bytes: 2)
        case 1:
            // Context: IPCSS/IPCSO/IPCSE, TUCSS/TUCSO/TUCSE, PAYLEN and TUCMD, HDRLEN, MSS.
            put(extra, at: 0, bytes: 4)
            put(buffer, at: 4, bytes: 4)
            put(length << 4 | UInt64(command & 0x0F), at: 8, bytes: 3)
            body[11] = command | 0x20
            body[13] = UInt8(truncatingIfNeeded: extra >> 24)
            put(length, at: 14, bytes: 2)
        default:
            // Data: DTALEN, DTYP_D, DCMD (with DEXT), POPTS, special.
            put(buffer, at: 0, bytes: 8)
            put(length | 0x10_0000, at: 8, bytes: 3)
            body[11] = command | 0x20
            body[13] = UInt8(truncatingIfNeeded: extra & 3)
            put(extra >> 16, at: 14, bytes: 2)
        }
        return [.memoryWrite(address: Self.e1000TransmitRing + index * 16, bytes: body)]
    }
}
