import NICCore

/// What the card counted for the user, cumulative (the guest's statistics registers clear when read): every drop
/// path has a counter.
typealias E1000Statistics = CounterTable<E1000Counter, 28>

/// The counters of ``E1000Statistics``, in report order.
enum E1000Counter: Int, CounterKey {
    case transmittedFrames, transmittedBytes, transmitDroppedLinkDown, transmitDroppedOversize, transmitDroppedEmpty,
        transmitDMAErrors, transmitRingErrors, transmitSegmentationErrors, transmitSegmentationFrames,
        receivedFrames, receivedBytes, receiveDroppedDisabled, receiveDroppedLinkDown, receiveDroppedLoopbackMode,
        receiveDroppedOversize, receiveDroppedRunt, receiveDroppedRingTooSmall, receiveDroppedReset,
        receiveFiltered, receiveVLANFiltered, receiveNoBuffers, receiveMissed, receiveTruncated, receiveDMAErrors,
        receiveRingErrors, loopbackFrames, loopbackDropped, interruptAssertions

    static let names = [
        "tx_frames", "tx_bytes", "tx_dropped_link_down", "tx_dropped_oversize", "tx_dropped_empty", "tx_dma_errors",
        "tx_ring_errors", "tx_tso_errors", "tx_tso_frames", "rx_frames", "rx_bytes", "rx_dropped_disabled",
        "rx_dropped_link_down", "rx_dropped_loopback_mode", "rx_dropped_oversize", "rx_dropped_runt",
        "rx_dropped_ring_too_small", "rx_dropped_reset", "rx_filtered", "rx_vlan_filtered", "rx_no_buffers",
        "rx_missed", "rx_truncated", "rx_dma_errors", "rx_ring_errors", "loopback_frames", "loopback_dropped",
        "interrupts",
    ]
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

    /// A good frame of `wireLength` bytes (FCS included) whose destination starts with `destinationHigh` went
    /// through in the direction whose counters are `registers`.
    @inline(__always)
    func countGood(_ registers: GoodFrameRegisters, wireLength: Int, destinationHigh: UInt8, broadcast: Bool) {
        count(registers.frames)
        countOctets(registers.octets, wireLength)
        count(registers.firstSizeBucket + Self.sizeBucket(wireLength))
        if broadcast {
            count(registers.broadcast)
        } else if destinationHigh & 1 != 0 {
            count(registers.multicast)
        }
    }

    /// A good frame of `wireLength` bytes (FCS included) was stored.
    func countReceived(wireLength: Int, destinationHigh: UInt8, broadcast: Bool) {
        countGood(.received, wireLength: wireLength, destinationHigh: destinationHigh, broadcast: broadcast)
        statistics[.receivedFrames] &+= 1
        statistics[.receivedBytes] &+= UInt64(wireLength)
    }

    /// A frame of `wireLength` bytes (FCS included) reached the MAC, whatever became of it.
    func countArrival(wireLength: Int) {
        count(Reg.tpr)
        countOctets(Reg.torl, wireLength)
    }

    /// A frame of `wireLength` bytes (FCS included) went out.
    func countTransmitted(wireLength: Int, destinationHigh: UInt8, broadcast: Bool) {
        countGood(.transmitted, wireLength: wireLength, destinationHigh: destinationHigh, broadcast: broadcast)
        count(Reg.tpt)
        countOctets(Reg.totl, wireLength)
        statistics[.transmittedFrames] &+= 1
        statistics[.transmittedBytes] &+= UInt64(wireLength)
    }
}

/// The statistics registers a good frame advances in one direction: frames, octets (the low half), the 64-byte size
/// bucket (the others follow it), broadcast and multicast frames.
struct GoodFrameRegisters {
    let frames: Int
    let octets: Int
    let firstSizeBucket: Int
    let broadcast: Int
    let multicast: Int

    /// GPRC, GORC, PRC64..., BPRC, MPRC.
    static var received: Self {
        .init(frames: Reg.gprc, octets: Reg.gorcl, firstSizeBucket: Reg.prc64, broadcast: Reg.bprc, multicast: Reg.mprc)
    }

    /// GPTC, GOTC, PTC64..., BPTC, MPTC.
    static var transmitted: Self {
        .init(frames: Reg.gptc, octets: Reg.gotcl, firstSizeBucket: Reg.ptc64, broadcast: Reg.bptc, multicast: Reg.mptc)
    }
}
