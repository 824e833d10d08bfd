import NICCore

/// The 93C46 serial EEPROM (64 16-bit words) behind EECD, played bit by bit as a Microwire device, and read whole
/// words through EERD.
///
/// Microwire: while CS is high, each rising edge of SK samples DI. A start bit (1), a two-bit opcode and a six-bit
/// address form a command. READ answers with a dummy 0 and then the word's 16 bits, most significant first, one per
/// rising edge, and carries on into the next word. WRITE, ERASE, ERAL and WRAL change words only after EWEN; EWDS
/// protects them again. Dropping CS ends any command; DO then reads 1 (ready).
struct E1000EEPROM {
    static let wordCount = 64
    static let addressBits = 6
    /// The sum of all 64 words a valid image has.
    static let checksumTarget: UInt16 = 0xBABA

    private enum State {
        case waitingForStart
        case command(bits: UInt32, count: Int)
        case reading(address: Int, bit: Int)
        case writing(address: Int?, bits: UInt32, count: Int)
        case finished
    }

    /// The words; they survive every reset.
    private(set) var words: [UInt16]
    private var state = State.waitingForStart
    private var clock = false
    private var writeEnabled = false
    /// The DO pin.
    private(set) var dataOut = true

    init(words: [UInt16]) {
        var image = Array(words.prefix(Self.wordCount))
        image += [UInt16](repeating: 0xFFFF, count: Self.wordCount - image.count)
        self.words = image
    }

    /// The word at `address`, or all-ones beyond the 64 words (as an absent location reads).
    func word(at address: Int) -> UInt16 {
        guard address >= 0, address < Self.wordCount else { return 0xFFFF }
        return words[address]
    }

    /// Returns the pins to idle (a reset of the chip, not of the EEPROM's contents).
    mutating func resetInterface() {
        state = .waitingForStart
        clock = false
        dataOut = true
        writeEnabled = false
    }

    /// Applies the pins the MAC drives.
    mutating func drive(chipSelect: Bool, clock newClock: Bool, dataIn: Bool) {
        defer { clock = newClock }
        guard chipSelect else {
            state = .waitingForStart
            dataOut = true
            return
        }
        guard newClock, !clock else { return }
        let bit: UInt32 = dataIn ? 1 : 0
        switch state {
        case .waitingForStart:
            if dataIn { state = .command(bits: 0, count: 0) }
        case .command(let bits, let count):
            let bits = bits << 1 | bit
            let count = count + 1
            guard count == 2 + Self.addressBits else {
                state = .command(bits: bits, count: count)
                return
            }
            execute(opcode: Int(bits >> UInt32(Self.addressBits)), address: Int(bits & 0x3F))
        case .reading(let address, let index):
            dataOut = words[address] & (0x8000 >> UInt16(index)) != 0
            state =
                index == 15
                ? .reading(address: (address + 1) % Self.wordCount, bit: 0) : .reading(address: address, bit: index + 1)
        case .writing(let address, let bits, let count):
            let bits = bits << 1 | bit
            guard count + 1 == 16 else {
                state = .writing(address: address, bits: bits, count: count + 1)
                return
            }
            if writeEnabled {
                let value = UInt16(truncatingIfNeeded: bits)
                if let address { words[address] = value } else { words = words.map { _ in value } }
            }
            state = .finished
        case .finished:
            break
        }
    }

    private mutating func execute(opcode: Int, address: Int) {
        switch opcode {
        case 0b10:
            state = .reading(address: address, bit: 0)
            dataOut = false  // the dummy zero before the data
        case 0b01:
            state = .writing(address: address, bits: 0, count: 0)
        case 0b11:
            if writeEnabled { words[address] = 0xFFFF }
            state = .finished
        default:
            switch address >> 4 {
            case 0b11: writeEnabled = true
            case 0b00: writeEnabled = false
            case 0b10: if writeEnabled { words = [UInt16](repeating: 0xFFFF, count: Self.wordCount) }
            default:
                state = .writing(address: nil, bits: 0, count: 0)
                return
            }
            state = .finished
        }
    }

    /// The image a card with `mac` ships with: the MAC in words 0-2, the chip's IDs in the Intel EEPROM map
    /// (0x0B subsystem, 0x0C subsystem vendor, 0x0D device, 0x0E vendor), typical initialization control words, and
    /// word 0x3F making the sum 0xBABA.
    static func image(mac: MACAddress, chip: E1000Chip) -> [UInt16] {
        var words = [UInt16](repeating: 0xFFFF, count: wordCount)
        let octets = mac.bytes
        for i in 0..<3 { words[i] = octets.load(littleEndian: UInt16.self, at: 2 * i) ?? 0 }
        let fixed: [(Int, UInt16)] = [
            (0x03, 0x0000), (0x05, 0x0000), (0x06, 0x0000), (0x07, 0x0000),
            (0x08, 0x3000), (0x09, 0x1000),  // part number
            (0x0A, 0x6403),  // initialization control 1
            (0x0B, chip.subsystemID), (0x0C, chip.subsystemVendorID), (0x0D, chip.deviceID), (0x0E, 0x8086),
            (0x0F, 0x3040),  // initialization control 2: symmetric and asymmetric pause
            (0x10, 0x0008), (0x11, 0x2000), (0x12, 0x7E14), (0x13, 0x0048), (0x14, 0x1000), (0x15, 0x00D8),
            (0x16, 0x0000), (0x17, 0x2700), (0x18, 0x6CC9), (0x19, 0x3150), (0x1A, 0x0722), (0x1B, 0x040B),
            (0x1C, 0x0984), (0x1D, 0x0000), (0x1E, 0xC000), (0x1F, 0x0706), (0x20, 0x1008), (0x21, 0x0000),
            (0x22, 0x0F04), (0x23, 0x7FFF), (0x24, 0x4D01),
        ]
        for (index, value) in fixed { words[index] = value }
        let sum = words[0..<(wordCount - 1)].reduce(UInt16(0)) { $0 &+ $1 }
        words[wordCount - 1] = checksumTarget &- sum
        return words
    }
}

extension E1000Card {
    /// EECD as the guest reads it: the pins it drives, DO from the EEPROM, and (82540EM/82545EM) GNT answering REQ
    /// at once, PRES.
    func readEEPROMControl() -> UInt32 {
        var value = regs[Reg.eecd] & EECD.writable
        if eeprom.dataOut { value |= EECD.dataOut.mask }
        if chip.hasEEPROMReadRegister {
            value |= EECD.present.mask
            if value & EECD.request.mask != 0 { value |= EECD.grant.mask }
        }
        return value
    }

    /// A write to EECD: the pins reach the EEPROM only while the chip grants them to software (always on the
    /// 82543GC, which has no REQ/GNT handshake).
    func writeEEPROMControl(_ value: UInt32) {
        regs[Reg.eecd] = value & EECD.writable
        let granted = !chip.hasEEPROMReadRegister || value & EECD.request.mask != 0
        guard granted else { return }
        eeprom.drive(
            chipSelect: value & EECD.chipSelect.mask != 0, clock: value & EECD.clock.mask != 0,
            dataIn: value & EECD.dataIn.mask != 0)
    }

    /// A write to EERD: START reads the addressed word at once and sets DONE.
    func writeEEPROMRead(_ value: UInt32) {
        guard value & EERD.start.mask != 0 else {
            regs[Reg.eerd] = value & 0xFF00
            return
        }
        let address = Int((value >> 8) & 0xFF)
        regs[Reg.eerd] = UInt32(eeprom.word(at: address)) << 16 | UInt32(address) << 8 | EERD.done.mask
    }
}
