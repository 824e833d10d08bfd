import NICCore

/// The MSI-X table and pending-bit array (BAR1): 16 bytes per vector {addr lo, addr hi, data, vector control (bit 0
/// masked)}, and one pending bit per vector at 0x800.
struct MSIXTable {
    let vectors: Int
    var entries: [UInt32]
    var pending: [Bool]

    init(vectors: Int) {
        self.vectors = vectors
        entries = [UInt32](repeating: 0, count: 4 * vectors)
        // Vector control starts masked.
        for vector in 0..<vectors { entries[4 * vector + 3] = 1 }
        pending = [Bool](repeating: false, count: vectors)
    }

    func isMasked(_ vector: Int) -> Bool { entries[4 * vector + 3] & 1 != 0 }
    func address(_ vector: Int) -> UInt64 { UInt64(entries[4 * vector + 1]) << 32 | UInt64(entries[4 * vector]) }
    func data(_ vector: Int) -> UInt32 { entries[4 * vector + 2] }

    mutating func clearPending() {
        for vector in 0..<vectors { pending[vector] = false }
    }

    func readDword(_ offset: Int) -> UInt32 {
        if offset < 16 * vectors { return entries[offset / 4] }
        let pbaStart = Int(VirtioPCILayout.msixPBAOffset)
        if offset >= pbaStart {
            var word: UInt32 = 0
            let first = (offset - pbaStart) * 8
            for bit in 0..<32 where first + bit < vectors && pending[first + bit] { word |= 1 << UInt32(bit) }
            return word
        }
        return 0
    }
}

extension VirtioNetCard {
    /// Whether the driver enabled MSI-X in the capability's message control.
    var msixEnabled: Bool {
        guard let msixCapability else { return false }
        return config.read(offset: msixCapability + 2, width: 2) & 0x8000 != 0
    }

    var msixFunctionMasked: Bool {
        guard let msixCapability else { return false }
        return config.read(offset: msixCapability + 2, width: 2) & 0x4000 != 0
    }

    /// Signals used buffers on `queue`: its MSI-X vector, or the ISR queue bit and INTx.
    func signalQueue(_ queue: Virtqueue) {
        if msixEnabled {
            sendMSIX(queue.vector)
        } else {
            isr |= 1
            statistics[.interruptsINTx] &+= 1
            pin.set(true)
        }
    }

    /// Signals a configuration change: the config vector, or the ISR config bit and INTx.
    func signalConfig() {
        isr |= 2
        statistics[.configInterrupts] &+= 1
        if msixEnabled {
            sendMSIX(configVector)
        } else {
            statistics[.interruptsINTx] &+= 1
            pin.set(true)
        }
    }

    private func sendMSIX(_ vector: UInt16) {
        guard vector != virtioNoVector else {
            statistics[.interruptsNoVector] &+= 1
            return
        }
        let index = Int(vector)
        guard index < msix.vectors else {
            statistics[.interruptsNoVector] &+= 1
            return
        }
        if msixFunctionMasked || msix.isMasked(index) {
            msix.pending[index] = true
            statistics[.msixMaskedPending] &+= 1
            return
        }
        statistics[.msixMessages] &+= 1
        msixSink?.signal(vector: index, address: msix.address(index), data: msix.data(index))
    }

    /// Delivers pending messages whose vectors became unmasked.
    func deliverUnmaskedPending() {
        guard msixEnabled, !msixFunctionMasked else { return }
        for vector in 0..<msix.vectors where msix.pending[vector] && !msix.isMasked(vector) {
            msix.pending[vector] = false
            statistics[.msixMessages] &+= 1
            msixSink?.signal(vector: vector, address: msix.address(vector), data: msix.data(vector))
        }
    }

    /// MSI-X enable or mask changed: INTx goes quiet while MSI-X is on; pending messages go out when unmasked.
    func refreshMSIXControl() {
        if msixEnabled { pin.set(false) }
        deliverUnmaskedPending()
    }

    /// Reads the ISR: the value, then cleared, and INTx deasserted (read-to-clear).
    func readISR() -> UInt8 {
        let value = isr
        isr = 0
        pin.set(false)
        return value
    }

    /// A validated vector for a vector register write: the value, or NO_VECTOR if the table has no such entry.
    func acceptedVector(_ value: UInt16) -> UInt16 {
        Int(value) < msix.vectors ? value : virtioNoVector
    }

    // MARK: BAR1

    func readMSIX(offset: Int, width: Int) -> UInt64 {
        guard width == 4 || width == 8, offset % 4 == 0 else { return 0 }
        var value = UInt64(msix.readDword(offset))
        if width == 8 { value |= UInt64(msix.readDword(offset + 4)) << 32 }
        return value
    }

    func writeMSIX(offset: Int, width: Int, value: UInt64) {
        guard width == 4 || width == 8, offset % 4 == 0 else { return }
        writeMSIXDword(offset, UInt32(truncatingIfNeeded: value))
        if width == 8 { writeMSIXDword(offset + 4, UInt32(truncatingIfNeeded: value >> 32)) }
        deliverUnmaskedPending()
    }

    private func writeMSIXDword(_ offset: Int, _ value: UInt32) {
        guard offset < 16 * msix.vectors else { return }  // the PBA is read-only
        let index = offset / 4
        msix.entries[index] = index % 4 == 3 ? value & 1 : value
    }
}
