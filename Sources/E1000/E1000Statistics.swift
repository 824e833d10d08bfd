import NICCore

/// What the card counted for the user, cumulative (the guest's statistics registers clear when read): every drop
/// path has a counter.
struct E1000Statistics {
    var transmittedFrames: UInt64 = 0
    var transmittedBytes: UInt64 = 0
    var transmitDroppedLinkDown: UInt64 = 0
    var transmitDroppedOversize: UInt64 = 0
    var transmitDroppedEmpty: UInt64 = 0
    var transmitDMAErrors: UInt64 = 0
    var transmitRingErrors: UInt64 = 0
    var transmitSegmentationErrors: UInt64 = 0
    var transmitSegmentationFrames: UInt64 = 0
    var receivedFrames: UInt64 = 0
    var receivedBytes: UInt64 = 0
    var receiveDroppedDisabled: UInt64 = 0
    var receiveDroppedLinkDown: UInt64 = 0
    var receiveDroppedLoopbackMode: UInt64 = 0
    var receiveDroppedOversize: UInt64 = 0
    var receiveDroppedRunt: UInt64 = 0
    var receiveDroppedRingTooSmall: UInt64 = 0
    var receiveDroppedReset: UInt64 = 0
    var receiveFiltered: UInt64 = 0
    var receiveVLANFiltered: UInt64 = 0
    var receiveNoBuffers: UInt64 = 0
    var receiveMissed: UInt64 = 0
    var receiveTruncated: UInt64 = 0
    var receiveDMAErrors: UInt64 = 0
    var receiveRingErrors: UInt64 = 0
    var loopbackFrames: UInt64 = 0
    var loopbackDropped: UInt64 = 0
    var interruptAssertions: UInt64 = 0

    var counters: [Counter] {
        [
            Counter("tx_frames", transmittedFrames),
            Counter("tx_bytes", transmittedBytes),
            Counter("tx_dropped_link_down", transmitDroppedLinkDown),
            Counter("tx_dropped_oversize", transmitDroppedOversize),
            Counter("tx_dropped_empty", transmitDroppedEmpty),
            Counter("tx_dma_errors", transmitDMAErrors),
            Counter("tx_ring_errors", transmitRingErrors),
            Counter("tx_tso_errors", transmitSegmentationErrors),
            Counter("tx_tso_frames", transmitSegmentationFrames),
            Counter("rx_frames", receivedFrames),
            Counter("rx_bytes", receivedBytes),
            Counter("rx_dropped_disabled", receiveDroppedDisabled),
            Counter("rx_dropped_link_down", receiveDroppedLinkDown),
            Counter("rx_dropped_loopback_mode", receiveDroppedLoopbackMode),
            Counter("rx_dropped_oversize", receiveDroppedOversize),
            Counter("rx_dropped_runt", receiveDroppedRunt),
            Counter("rx_dropped_ring_too_small", receiveDroppedRingTooSmall),
            Counter("rx_dropped_reset", receiveDroppedReset),
            Counter("rx_filtered", receiveFiltered),
            Counter("rx_vlan_filtered", receiveVLANFiltered),
            Counter("rx_no_buffers", receiveNoBuffers),
            Counter("rx_missed", receiveMissed),
            Counter("rx_truncated", receiveTruncated),
            Counter("rx_dma_errors", receiveDMAErrors),
            Counter("rx_ring_errors", receiveRingErrors),
            Counter("loopback_frames", loopbackFrames),
            Counter("loopback_dropped", loopbackDropped),
            Counter("interrupts", interruptAssertions),
        ]
    }
}

/// The guest-visible statistics registers (0x4000-0x40FF), counted as the chip counts them: 32-bit counters saturate,
/// 64-bit octet counters carry from the low into the high register.
extension E1000Card {
    @inline(__always)
    func count(_ index: Int, by amount: UInt32 = 1) {
        let (sum, overflow) = regs[index].addingReportingOverflow(amount)
        regs[index] = overflow ? .max : sum
    }

    @inline(__always)
    func countOctets(_ lowIndex: Int, _ amount: Int) {
        let (sum, overflow) = regs[lowIndex].addingReportingOverflow(UInt32(truncatingIfNeeded: amount))
        regs[lowIndex] = sum
        if overflow { regs[lowIndex + 1] &+= 1 }
    }

    /// The size bucket (64, 127, 255, 511, 1023, 1522 and above) of a frame of `wireLength` bytes with FCS.
    @inline(__always)
    static func sizeBucket(_ wireLength: Int) -> Int {
        switch wireLength {
        case ..<65: 0
        case ..<128: 1
        case ..<256: 2
        case ..<512: 3
        case ..<1024: 4
        default: 5
        }
    }

    /// A good frame of `wireLength` bytes (FCS included) to `destination` was stored.
    func countReceived(wireLength: Int, destinationHigh: UInt8, broadcast: Bool) {
        count(Reg.gprc)
        countOctets(Reg.gorcl, wireLength)
        count(Reg.prc64 + Self.sizeBucket(wireLength))
        if broadcast {
            count(Reg.bprc)
        } else if destinationHigh & 1 != 0 {
            count(Reg.mprc)
        }
        statistics.receivedFrames &+= 1
        statistics.receivedBytes &+= UInt64(wireLength)
    }

    /// A frame of `wireLength` bytes (FCS included) reached the MAC, whatever became of it.
    func countArrival(wireLength: Int) {
        count(Reg.tpr)
        countOctets(Reg.torl, wireLength)
    }

    /// A frame of `wireLength` bytes (FCS included) went out.
    func countTransmitted(wireLength: Int, destinationHigh: UInt8, broadcast: Bool) {
        count(Reg.gptc)
        countOctets(Reg.gotcl, wireLength)
        count(Reg.tpt)
        countOctets(Reg.totl, wireLength)
        count(Reg.ptc64 + Self.sizeBucket(wireLength))
        if broadcast {
            count(Reg.bptc)
        } else if destinationHigh & 1 != 0 {
            count(Reg.mptc)
        }
        statistics.transmittedFrames &+= 1
        statistics.transmittedBytes &+= UInt64(wireLength)
    }
}
