import NICCore

/// An Intel PRO/1000 (8254x) gigabit Ethernet controller: 82540EM, 82543GC or 82545EM.
///
/// BAR layout (as VirtualBox lays it out): BAR0 is the 128 KiB register file (32-bit, non-prefetchable memory);
/// BAR2 is an 8-byte I/O window, IOADDR at +0 selecting a register and IODATA at +4 reading or writing it. Linux's
/// e1000 finds the I/O BAR by scanning BARs 1-5 and resets the 82540EM and 82545EM through it.
///
/// Config space carries a power-management and a PCI-X capability, as VirtualBox's model does.
///
/// Receive drains the ``FramePort`` into the ring; a frame that finds too few free descriptors waits in the card, at
/// the head of the receive FIFO, for the next RDT write (RNBC counts the wait once); frames the port's queue refuses
/// meanwhile are missed packets (MPC, RXO). The chip appends the FCS unless RCTL.SECRC (Linux's e1000 does not set
/// it). Transmit finishes every offload itself (checksums, TSO, VLAN insertion) and hands the port finished frames
/// without metadata; TX IFCS is ignored (the port carries frames without FCS either way).
///
/// The card is a single-threaded state machine: the host serialises every call, so its register and ring state opts
/// out of dynamic exclusivity checks (`@exclusivity(unchecked)`), which would otherwise dominate the data path.
public final class E1000Card: PCICardBase, NetworkCard {
    /// Size of BAR0 in bytes.
    public static let registerSpaceSize: UInt64 = 128 << 10
    /// Size of the I/O BAR in bytes.
    public static let ioSpaceSize: UInt64 = 8
    /// The BAR index of the register file.
    public static let memoryBAR = 0
    /// The BAR index of the IOADDR/IODATA window.
    public static let ioBAR = 2
    static let registerWords = Int(registerSpaceSize / 4)

    /// The chip this card models.
    public let chip: E1000Chip

    let clock: any DeviceClock
    let presence: ChipSet
    var timers: E1000Timers?

    /// Every 32-bit register of BAR0, by dword index.
    @exclusivity(unchecked) var regs: [UInt32]
    @exclusivity(unchecked) var eeprom: E1000EEPROM
    @exclusivity(unchecked) var phy: E1000PHY
    @exclusivity(unchecked) var mdio = MDIOBitBang()
    /// IOADDR: the register the I/O window's IODATA reaches.
    @exclusivity(unchecked) var ioAddress: UInt32 = 0
    /// The exact-match filter: addresses of the RA entries with AV set.
    @exclusivity(unchecked) var receiveAddresses: [UInt64] = []
    @exclusivity(unchecked) var statistics = E1000Statistics()
    /// When the interrupt line was last asserted (ITR moderation).
    @exclusivity(unchecked) var lastAssertion: Duration?

    // Receive.
    /// The frame at the head of the receive FIFO, waiting for descriptors.
    @exclusivity(unchecked) var heldFrame: InboundFrame?
    /// Whether the current wait for descriptors was already counted in RNBC.
    @exclusivity(unchecked) var receiveStalled = false
    /// Scratch for a frame the receiver must rewrite (padding, VLAN strip).
    @exclusivity(unchecked) var receiveScratch: [UInt8]
    /// Receive descriptors of the frame being stored, read and written back in one DMA each.
    @exclusivity(unchecked) var receiveDescriptors: [UInt8]
    @exclusivity(unchecked) var portDropsSeen: UInt64 = 0

    // Transmit.
    /// Re-entrancy guard: a transmit walk is running.
    @exclusivity(unchecked) var transmitting = false
    /// A batch of transmit descriptors, read in one DMA and written back in one.
    @exclusivity(unchecked) var transmitDescriptors: [UInt8]
    /// The frame being assembled from data descriptors, after `TransmitLimits.headroom` bytes for a VLAN tag.
    @exclusivity(unchecked) var transmitBuffer: [UInt8]
    /// One TSO segment at a time, after the same headroom.
    @exclusivity(unchecked) var segmentBuffer: [UInt8]
    @exclusivity(unchecked) var assembly = TransmitAssembly()
    @exclusivity(unchecked) var checksumContext = OffloadContext()
    @exclusivity(unchecked) var segmentationContext = OffloadContext()
    /// Frames the transmitter looped back, waiting for the receiver (never processed recursively).
    @exclusivity(unchecked) var loopbackQueue: [[UInt8]] = []

    public var modelName: String { chip.rawValue }

    /// Creates a card of `chip` with `macAddress` in its EEPROM, using the host's `environment`.
    public init(chip: E1000Chip, macAddress: MACAddress, environment: CardEnvironment) {
        self.chip = chip
        presence = chip.presence
        // The identity and BARs are a fixed table; constructing them cannot fail.
        let config = try! PCIConfigSpace(
            identity: chip.identity,
            bars: [
                Self.memoryBAR: BARLayout(.memory32(prefetchable: false), size: Self.registerSpaceSize),
                Self.ioBAR: BARLayout(.io, size: Self.ioSpaceSize),
            ])
        // Power management (version 2, DSI; D0-D3 and PME_En writable) and PCI-X, the capabilities VirtualBox
        // gives the card. They fit in the 256-byte space by construction.
        try! config.addCapability(
            id: 0x01, body: [0x22, 0x00, 0x00, 0x00, 0x00, 0x00], writableMask: [0, 0, 0x03, 0x01, 0, 0])
        try! config.addCapability(id: 0x07, body: [0x02, 0x00, 0xF8, 0xFF, 0x40, 0x00])
        clock = environment.clock
        regs = [UInt32](repeating: 0, count: Self.registerWords)
        eeprom = E1000EEPROM(words: E1000EEPROM.image(mac: macAddress, chip: chip))
        phy = E1000PHY(identifier2: chip.phyIdentifier2)
        receiveScratch = [UInt8](repeating: 0, count: ReceiveLimits.maximumWireFrame + 64)
        receiveDescriptors = [UInt8](repeating: 0, count: 16 * ReceiveLimits.maximumDescriptorsPerFrame)
        transmitDescriptors = [UInt8](repeating: 0, count: 16 * TransmitLimits.descriptorBatch)
        transmitBuffer = [UInt8](repeating: 0, count: TransmitLimits.headroom + TransmitLimits.segmentationBuffer + 64)
        segmentBuffer = [UInt8](repeating: 0, count: TransmitLimits.headroom + TransmitLimits.maximumFrame + 64)
        super.init(macAddress: macAddress, function: PCIFunction(config: config, environment: environment))
        timers = E1000Timers(card: self, clock: clock)
        lastLinkUp = linkUp
        function.card = self
        hardReset()
    }

    // MARK: NetworkCard

    public func reset() {
        function.reset()
        hardReset()
    }

    package func configDidChange(_ change: PCIConfigChange) {
        guard change.contains(.command) else { return }
        if config.command.contains(.busMaster) {
            transmit()
            receivePending()
        }
        updateInterrupts()
    }

    public func service() {
        guard port.hasPendingWork else { return }
        port.acknowledgeWork()
        refreshLink()
        receivePending()
        updateInterrupts()
    }

    /// Follows the cable and the attachment's carrier: STATUS.LU and the PHY's link bits, and LSC on a change.
    func refreshLink() {
        guard let up = linkChange() else { return }
        phy.setLink(up: up)
        raise(ICR.linkStatusChange.mask)
        updateInterrupts()
    }

    /// Every register to its reset value, both rings stopped, the PHY and the EEPROM interface idle; the EEPROM's
    /// words survive and RA[0] is loaded from them again.
    func hardReset() {
        for index in regs.indices { regs[index] = 0 }
        for definition in RegisterTable.definitions {
            for i in 0..<definition.count { regs[definition.offset / 4 + i] = definition.reset }
        }
        loadReceiveAddressFromEEPROM()
        eeprom.resetInterface()
        phy.reset()
        phy.setLink(up: linkUp)
        mdio.reset()
        ioAddress = 0
        timers?.cancelAll()
        lastAssertion = nil
        assembly = TransmitAssembly()
        checksumContext = OffloadContext()
        segmentationContext = OffloadContext()
        loopbackQueue.removeAll(keepingCapacity: true)
        if heldFrame != nil {
            heldFrame = nil
            statistics[.receiveDroppedReset] &+= 1
        }
        receiveStalled = false
        portDropsSeen = port.inboundDropped
        port.setPromiscuous(false)
        lastLinkUp = linkUp
        // The 82543GC signals a link change after every reset (VirtualBox's E1K_LSC_ON_RESET).
        if chip == .i82543GC { regs[Reg.icr] |= ICR.linkStatusChange.mask }
        updateInterrupts()
    }

    /// RAL0/RAH0 from EEPROM words 0-2, with AV set (macOS relies on RA[0] being valid after reset).
    func loadReceiveAddressFromEEPROM() {
        let low = UInt32(eeprom.word(at: 0)) | UInt32(eeprom.word(at: 1)) << 16
        regs[Reg.ra] = low
        regs[Reg.ra + 1] = UInt32(eeprom.word(at: 2)) | RAH.addressValid.mask
        rebuildAddressFilter()
    }

    /// Recomputes the exact-match list from the RA registers.
    func rebuildAddressFilter() {
        receiveAddresses.removeAll(keepingCapacity: true)
        for entry in 0..<16 {
            let low = regs[Reg.ra + 2 * entry]
            let high = regs[Reg.ra + 2 * entry + 1]
            guard high & RAH.addressValid.mask != 0 else { continue }
            // RAL holds octets 0-3 (octet 0 lowest), RAH octets 4-5; as a MACAddress, octet 0 is most significant.
            var value: UInt64 = 0
            for octet in 0..<4 { value = value << 8 | UInt64((low >> (8 * UInt32(octet))) & 0xFF) }
            for octet in 0..<2 { value = value << 8 | UInt64((high >> (8 * UInt32(octet))) & 0xFF) }
            receiveAddresses.append(value)
        }
    }

    public var counters: [Counter] {
        statistics.counters + functionCounters
    }
}

/// A delayed interrupt's two timers: the packet timer, restarted by every event (RDTR, TIDV), and the absolute
/// timer, started by the first event and left running (RADV, TADV). Either firing raises the interrupt.
struct DelayTimers {
    let packet: DeviceTimer
    let absolute: DeviceTimer

    init(clock: any DeviceClock, fired: @escaping () -> Void) {
        packet = DeviceTimer(clock: clock, action: fired)
        absolute = DeviceTimer(clock: clock, action: fired)
    }

    /// An event happened: (re)start the packet timer for `packetDelay` units and, when `absoluteDelay` is not 0, the
    /// absolute timer unless it is already running.
    func start(packetDelay: Int, absoluteDelay: Int, unit: Duration) {
        packet.arm(after: unit * packetDelay)
        if absoluteDelay != 0, !absolute.isArmed { absolute.arm(after: unit * absoluteDelay) }
    }

    var isArmed: Bool { packet.isArmed || absolute.isArmed }

    func cancel() {
        packet.cancel()
        absolute.cancel()
    }
}

/// The card's timers: interrupt throttling, and the receive and transmit delay timers.
final class E1000Timers {
    let throttle: DeviceTimer
    let receive: DelayTimers
    let transmit: DelayTimers

    init(card: E1000Card, clock: any DeviceClock) {
        throttle = DeviceTimer(clock: clock) { [weak card] in card?.updateInterrupts() }
        receive = DelayTimers(clock: clock) { [weak card] in card?.receiveTimerFired() }
        transmit = DelayTimers(clock: clock) { [weak card] in card?.transmitTimerFired() }
    }

    func cancelAll() {
        throttle.cancel()
        receive.cancel()
        transmit.cancel()
    }
}

extension E1000Card: PCIFunctionCard {
    package func cableDidChange() { refreshLink() }
}
