import NICCore

/// One receive or transmit descriptor, decoded from any software style.
///
/// The fields are in the 32-bit layout: `status` is the 16-bit status word (TMD1/RMD1 bits 31:16), `byteCount`
/// the 12-bit two's complement buffer length, `misc` TMD2/RMD2 (the 16-bit style keeps TMD2 in the upper half and
/// RMD's message count in the lower bits).
struct Descriptor {
    var buffer: UInt32
    var byteCount: UInt16
    var status: UInt16
    var misc: UInt32

    /// The buffer length in bytes, 1...4096.
    var bufferLength: Int { 4096 - Int(byteCount & 0x0FFF) }
}

/// Which ring a descriptor belongs to.
enum Ring {
    case receive, transmit
}

extension PCNetCard {
    /// Bytes per descriptor: 8 for the 16-bit style, 16 otherwise.
    var descriptorStride: UInt32 { softwareSize32 ? 16 : 8 }

    /// The guest address of entry `index` of `ring`.
    func descriptorAddress(_ ring: Ring, _ index: Int) -> GuestAddress {
        let base =
            ring == .receive
            ? UInt32(csr[25]) << 16 | UInt32(csr[24])
            : UInt32(csr[31]) << 16 | UInt32(csr[30])
        return physicalAddress(base &+ UInt32(truncatingIfNeeded: index) &* descriptorStride)
    }

    /// Offset of the byte that holds OWN.
    private var ownByteOffset: UInt64 { softwareSize32 ? 7 : 3 }

    /// Reads only the OWN bit of the descriptor at `address` (the guest sets it last, so it is read first).
    func descriptorOwned(at address: GuestAddress) throws(DMAError) -> Bool {
        guard let at = address.advanced(by: ownByteOffset) else {
            throw DMAError(.wrapsAddressSpace, address: address, length: 8, isWrite: false)
        }
        return try dma.readLittleEndian(UInt8.self, at: at) & 0x80 != 0
    }

    /// Reads the descriptor at `address` once, in the current software style.
    func readDescriptor(at address: GuestAddress, ring: Ring) throws(DMAError) -> Descriptor {
        if softwareSize32 {
            var words: (UInt32, UInt32, UInt32) = (0, 0, 0)
            try withUnsafeMutableBytes(of: &words) { (buffer) throws(DMAError) in
                try dma.read(at: address, into: buffer)
            }
            let first = UInt32(littleEndian: words.0)
            let second = UInt32(littleEndian: words.1)
            let third = UInt32(littleEndian: words.2)
            let swapped = softwareStyle == 3
            return Descriptor(
                buffer: swapped ? third : first, byteCount: UInt16(truncatingIfNeeded: second),
                status: UInt16(truncatingIfNeeded: second >> 16), misc: swapped ? first : third)
        }
        var words: (UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0)
        try withUnsafeMutableBytes(of: &words) { (buffer) throws(DMAError) in
            try dma.read(at: address, into: buffer)
        }
        let addressLow = UInt16(littleEndian: words.0)
        let statusAndHigh = UInt16(littleEndian: words.1)
        let last = UInt16(littleEndian: words.3)
        return Descriptor(
            buffer: UInt32(addressLow) | UInt32(statusAndHigh & 0x00FF) << 16,
            byteCount: UInt16(littleEndian: words.2), status: statusAndHigh & 0xFF00,
            misc: ring == .transmit ? UInt32(last) << 16 : UInt32(last))
    }

    /// Writes back what the chip changes in a descriptor: the misc word (errors, message count), then the status
    /// word, so OWN is released last. The buffer address and byte count are never rewritten.
    func writeBack(_ descriptor: Descriptor, at address: GuestAddress, ring: Ring) throws(DMAError) {
        if softwareSize32 {
            let miscOffset: UInt64 = softwareStyle == 3 ? 0 : 8
            guard let miscAddress = address.advanced(by: miscOffset), let statusAddress = address.advanced(by: 6)
            else { throw DMAError(.wrapsAddressSpace, address: address, length: 16, isWrite: true) }
            try dma.writeLittleEndian(descriptor.misc, at: miscAddress)
            try dma.writeLittleEndian(descriptor.status, at: statusAddress)
            return
        }
        guard let miscAddress = address.advanced(by: 6), let statusAddress = address.advanced(by: 3) else {
            throw DMAError(.wrapsAddressSpace, address: address, length: 8, isWrite: true)
        }
        let misc =
            ring == .transmit ? UInt16(truncatingIfNeeded: descriptor.misc >> 16) : UInt16(descriptor.misc & 0x0FFF)
        try dma.writeLittleEndian(misc, at: miscAddress)
        try dma.writeLittleEndian(UInt8(truncatingIfNeeded: descriptor.status >> 8), at: statusAddress)
    }
}
