import NICCore

/// An AMD PCnet-PCI II (Am79C970A) or PCnet-FAST III (Am79C973) Ethernet controller.
///
/// BAR0 is the 32-byte I/O window (APROM, then RDP/RAP/RESET/BDP in word or double-word mode); BAR1 is the same
/// window mapped as memory. The card is a single-threaded state machine: the host serialises every call, so its
/// register and ring state opts out of dynamic exclusivity checks (`@exclusivity(unchecked)`), which would otherwise
/// dominate the data path.
public final class PCNetCard: PCICardBase, NetworkCard {
    /// The chip this card models.
    public let chip: PCNetChip

    let clock: any DeviceClock
    var pollTimer: DeviceTimer?
    var softwareTimer: DeviceTimer?

    /// The 16-byte address PROM at the start of the I/O window.
    @exclusivity(unchecked) var aprom: [UInt8]
    @exclusivity(unchecked) var csr: [UInt16]
    @exclusivity(unchecked) var bcr: [UInt16]
    @exclusivity(unchecked) var rap: Int = 0
    @exclusivity(unchecked) var phy = PCNetPHY()

    /// Index of the current receive and transmit descriptors.
    @exclusivity(unchecked) var rxIndex = 0
    @exclusivity(unchecked) var txIndex = 0
    /// The CSR0 interrupt flags the guest has read; only those may be cleared by a write of one.
    @exclusivity(unchecked) var csr0SeenByGuest: UInt16 = 0
    /// INIT was requested while bus mastering was off and is waiting for the next CSR0 read (VirtualBox's quirk for
    /// drivers that toggle bus mastering around INIT).
    @exclusivity(unchecked) var initPending = false
    /// Re-entrancy guard: a transmit pass is running.
    @exclusivity(unchecked) var transmitting = false
    /// Frames looped back by the transmitter, waiting for the receiver (never processed recursively).
    @exclusivity(unchecked) var loopbackQueue: [LoopbackFrame] = []
    /// Assembly buffer for the frame being transmitted.
    @exclusivity(unchecked) var transmitBuffer: [UInt8]
    /// Scratch buffer for a received frame plus its FCS.
    @exclusivity(unchecked) var receiveBuffer: [UInt8]
    @exclusivity(unchecked) var statistics = PCNetStatistics()

    public var modelName: String { chip.rawValue }

    /// Creates a card with `macAddress` in its APROM, using the host's `environment`.
    public init(chip: PCNetChip, macAddress: MACAddress, environment: CardEnvironment) {
        self.chip = chip
        // The identity is a fixed table; constructing it cannot fail.
        let config = try! PCIConfigSpace(
            identity: chip.identity,
            bars: [0: BARLayout(.io, size: 32), 1: BARLayout(.memory32(prefetchable: false), size: 32)])
        clock = environment.clock
        aprom = Self.makeAPROM(macAddress)
        csr = [UInt16](repeating: 0, count: 128)
        bcr = [UInt16](repeating: 0, count: BCRTable.count)
        transmitBuffer = [UInt8](repeating: 0, count: FrameLimits.maximum + 4)
        receiveBuffer = [UInt8](repeating: 0, count: FrameLimits.maximum + 4)
        super.init(macAddress: macAddress, function: PCIFunction(config: config, environment: environment))
        pollTimer = DeviceTimer(clock: clock) { [weak self] in self?.pollTimerFired() }
        softwareTimer = DeviceTimer(clock: clock) { [weak self] in self?.softwareTimerFired() }
        function.card = self
        hardReset()
    }

    /// The address PROM: MAC, reserved bytes, 0x11 for PCI, checksum of bytes 0-11 and 14-15, then "WW".
    static func makeAPROM(_ mac: MACAddress) -> [UInt8] {
        var prom = mac.bytes + [0, 0, 0, 0x11, 0, 0, 0, 0, 0x57, 0x57]
        let sum = prom.reduce(UInt16(0)) { $0 &+ UInt16($1) }
        prom[12] = UInt8(truncatingIfNeeded: sum)
        prom[13] = UInt8(truncatingIfNeeded: sum >> 8)
        return prom
    }

    // MARK: NetworkCard

    public func reset() {
        function.reset()
        hardReset()
    }

    public func service() {
        guard port.hasPendingWork else { return }
        port.acknowledgeWork()
        refreshLink()
        var budget = FramePort.defaultQueueCapacity * 4
        while budget > 0, let frame = port.nextInbound() {
            budget -= 1
            frame.bytes.withUnsafeBytes { receive($0, loopbackFCS: nil) }
        }
        updateInterrupts()
    }

    func refreshLink() {
        guard let up = linkChange() else { return }
        phy.linkChanged(up: up)
    }

    /// H_RESET: the address PROM, every CSR and BCR and the PHY to power-on values, then S_RESET.
    func hardReset() {
        aprom = Self.makeAPROM(macAddress)
        // S_RESET leaves many CSRs alone (IADR, POLLINT, the Am79C973's CSR7...); H_RESET clears them all first.
        for index in csr.indices { csr[index] = 0 }
        for index in 0..<BCRTable.count { bcr[index] = BCRTable.resetValue(index, chip: chip) }
        phy = PCNetPHY()
        lastLinkUp = !linkUp
        refreshLink()
        softReset()
        softwareTimer?.cancel()
    }

    public var counters: [Counter] {
        statistics.counters + [
            Counter("missed_frame_count_csr112", UInt64(csr[112]))
        ] + functionCounters
    }
}

extension PCNetCard: PCIFunctionCard {
    package func cableDidChange() { refreshLink() }
}

/// A frame the transmitter looped back to the receiver, with its FCS.
struct LoopbackFrame {
    var bytes: [UInt8]
    /// The FCS as transmitted (computed by the chip or supplied by the guest).
    var fcs: UInt32
}
