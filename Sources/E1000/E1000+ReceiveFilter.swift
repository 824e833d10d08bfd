import NICCore

/// The receive address filters: exact matches (RA with AV), broadcast (BAM), unicast and multicast promiscuous
/// (UPE, MPE) and the 4096-bit multicast hash table (MTA) indexed per RCTL.MO.
/// How a destination address passed the receive filters.
enum AddressMatch {
    /// An RA entry with AV matched.
    case exact
    /// Broadcast, a promiscuous mode or the multicast hash let it through (the descriptor's PIF bit).
    case inexact
}

extension E1000Card {
    /// How the frame's destination passes the filters, or `nil` if they reject it.
    func addressFilter(_ frame: UnsafeRawBufferPointer, rctl: UInt32) -> AddressMatch? {
        let destination = MACAddress(in: frame, at: 0)?.rawValue ?? 0
        for address in receiveAddresses where address == destination { return .exact }
        let multicast = frame[0] & 1 != 0
        if destination == 0xFFFF_FFFF_FFFF, rctl & RCTL.broadcastAccept.mask != 0 { return .inexact }
        if multicast {
            if rctl & RCTL.multicastPromiscuous.mask != 0 { return .inexact }
            let hash = Self.multicastHash(
                octet4: frame[4], octet5: frame[5], offset: RCTL.multicastOffset.value(in: rctl))
            return regs[Reg.mta + hash >> 5] & (1 << UInt32(hash & 0x1F)) != 0 ? .inexact : nil
        }
        return rctl & RCTL.unicastPromiscuous.mask != 0 ? .inexact : nil
    }

    /// The 12-bit multicast table index for RCTL.MO = `offset`: destination bits 47:36, 46:35, 45:34 or 43:32.
    static func multicastHash(octet4: UInt8, octet5: UInt8, offset: UInt32) -> Int {
        let low = Int(octet4)
        let high = Int(octet5)
        let hash: Int
        switch offset {
        case 0: hash = low >> 4 | high << 4
        case 1: hash = low >> 3 | high << 5
        case 2: hash = low >> 2 | high << 6
        default: hash = low | high << 8
        }
        return hash & 0xFFF
    }
}
