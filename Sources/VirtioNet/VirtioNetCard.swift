import NICCore

/// A transitional virtio-net device (PCI 1AF4:1000): the legacy I/O interface in BAR0 and the virtio 1.x interface
/// in BAR4, MSI-X in BAR1, split and packed rings, offloads, a control queue and up to 16 queue pairs. See
/// ``VirtioPCILayout`` for the BAR layout.
///
/// Threading contract: every configuration entry point (config space, BAR accesses other than doorbells for data
/// queues, ``service()``, ``reset()``, cable changes) must be serialised by the host, as for every card. The data
/// path of each queue pair lives in its own ``VirtioQueuePair``: ``servicePair(_:)`` and data-queue doorbells for
/// *different* pairs may run on different threads at the same time, provided
/// - MSI-X is enabled with a vector per queue (INTx shares the ISR byte, and a shared vector its pending bit),
/// - the attachment's `transmit` and the MSI-X sink accept concurrent calls,
/// - no configuration call runs meanwhile.
/// A pair's own calls must not overlap. Under concurrency the device-wide counters a pair touches (MSI-X message
/// counts, ring errors) may lose increments, and a ring error raises DEVICE_NEEDS_RESET from the pair's thread.
///
/// Re-entrancy: a frame an attachment hands straight back (and a host that services the card from `onWork` at
/// once) is queued behind the running pass, never processed recursively.
public final class VirtioNetCard: PCICardBase, NetworkCard {
    /// The queue pairs the device offers (max_virtqueue_pairs).
    public let maximumQueuePairs: Int
    /// The MTU the device reports with VIRTIO_NET_F_MTU (the guest's initial and largest MTU).
    public let mtu: UInt16

    let msixSink: (any MSIXSink)?
    /// The MSI-X capability's offset; `nil` when the host has no MSI-X sink (the capability is then left out, so
    /// the guest uses INTx).
    let msixCapability: Int?
    let pciConfigAccessCapability: Int
    @exclusivity(unchecked) var msix: MSIXTable

    // MARK: Transport state (serialised)

    @exclusivity(unchecked) var deviceStatus: VirtioDeviceStatus = []
    @exclusivity(unchecked) var driverFeatures: VirtioFeatures = []
    /// The features in force: accepted at FEATURES_OK (modern) or on the legacy features write.
    @exclusivity(unchecked) public internal(set) var negotiated: VirtioFeatures = []
    @exclusivity(unchecked) var deviceFeatureSelect: UInt32 = 0
    @exclusivity(unchecked) var driverFeatureSelect: UInt32 = 0
    @exclusivity(unchecked) var queueSelect = 0
    @exclusivity(unchecked) var configVector: UInt16 = virtioNoVector
    @exclusivity(unchecked) var isr: UInt8 = 0
    @exclusivity(unchecked) var configGeneration: UInt8 = 0
    /// Every virtqueue: receive 2n, transmit 2n+1, then the control queue.
    package let queues: [Virtqueue]
    /// The queue pairs.
    package let pairs: [VirtioQueuePair]
    let controlQueue: Virtqueue
    let controlChain = DescriptorChain()
    @exclusivity(unchecked) var controlBuffer: [UInt8]

    // MARK: Network state (serialised)

    /// The MAC address the receive filter uses (the config MAC, changed by CTRL_MAC_ADDR_SET or a legacy write).
    @exclusivity(unchecked) public internal(set) var currentMAC: MACAddress
    @exclusivity(unchecked) var filter = ReceiveFilter()
    /// Queue pairs in use (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET).
    @exclusivity(unchecked) public internal(set) var activeQueuePairs = 1
    /// Guest receive offloads in force (negotiated, then CTRL_GUEST_OFFLOADS_SET).
    @exclusivity(unchecked) public internal(set) var guestOffloads: VirtioFeatures = []
    /// The virtio-net header length: 12, or 10 for a legacy driver without MRG_RXBUF.
    @exclusivity(unchecked) public internal(set) var headerLength = 10
    @exclusivity(unchecked) var announcing = false
    @exclusivity(unchecked) var statistics = VirtioNetStatistics()
    @exclusivity(unchecked) var lastDriverMode: DriverInterface = .none

    /// Which interface the driver used last.
    enum DriverInterface {
        case none, legacy, modern
    }

    public var modelName: String { "virtio" }

    /// The most queue pairs the device can offer (VIRTIO_NET_F_MQ's limit as vnic implements it).
    public static let queuePairLimit = 16
    /// The MTUs the device can report with VIRTIO_NET_F_MTU: Linux's minimum to the largest IPv4 datagram.
    public static let mtuLimits = 68...65535
    /// The MTU reported when none is asked for.
    public static let defaultMTU = 1500

    /// The default (and largest) size of each data queue.
    public static let defaultQueueSize = 256
    /// The control queue's size.
    public static let controlQueueSize = 64

    /// Creates a card with `macAddress` offering `queuePairs` queue pairs (clamped to 1...``queuePairLimit``), each
    /// queue of `queueSize` entries (1...32768; the legacy interface needs a power of two), and reporting `mtu`
    /// (clamped to ``mtuLimits``; 9000 for jumbo frames). `NICCards` checks a host's options against the same
    /// limits and names the one that is wrong.
    public init(
        macAddress: MACAddress, environment: CardEnvironment, queuePairs: Int = 1,
        queueSize: Int = VirtioNetCard.defaultQueueSize, mtu: Int = VirtioNetCard.defaultMTU
    ) {
        self.mtu = UInt16(max(Self.mtuLimits.lowerBound, min(mtu, Self.mtuLimits.upperBound)))
        currentMAC = macAddress
        maximumQueuePairs = max(1, min(queuePairs, Self.queuePairLimit))
        let vectors = 2 * maximumQueuePairs + 2
        // The identity and BAR table are fixed and fit: construction cannot fail.
        let config = try! PCIConfigSpace(identity: VirtioPCILayout.identity, bars: VirtioPCILayout.barLayouts())
        let offsets = try! VirtioPCILayout.addCapabilities(
            to: config, vectors: vectors, msix: environment.msix != nil)
        msixCapability = offsets.msix
        pciConfigAccessCapability = offsets.pciConfigAccess
        msix = MSIXTable(vectors: vectors)
        let function = PCIFunction(config: config, environment: environment)
        let dma = function.dma
        msixSink = environment.msix
        let size = UInt16(max(1, min(queueSize, 32768)))
        var queues: [Virtqueue] = []
        for index in 0..<2 * maximumQueuePairs {
            queues.append(Virtqueue(index: index, maximumSize: size, memory: dma))
        }
        controlQueue = Virtqueue(
            index: 2 * maximumQueuePairs, maximumSize: UInt16(Self.controlQueueSize), memory: dma)
        queues.append(controlQueue)
        self.queues = queues
        controlBuffer = [UInt8](repeating: 0, count: ControlCommand.maximumLength)
        var pairs: [VirtioQueuePair] = []
        for index in 0..<maximumQueuePairs {
            pairs.append(VirtioQueuePair(index: index, receive: queues[2 * index], transmit: queues[2 * index + 1]))
        }
        self.pairs = pairs
        super.init(macAddress: macAddress, function: function)
        for pair in pairs { pair.card = self }
        function.card = self
        deviceReset()
    }

    // MARK: NetworkCard

    public func reset() {
        config.reset()
        msix = MSIXTable(vectors: msix.vectors)
        deviceReset()
        pin.refresh()
    }

    package func configDidChange(_ change: PCIConfigChange) {
        if change.contains(.capability) {
            refreshMSIXControl()
        }
    }

    /// Drains the port: applies link changes, then filters each frame and places it straight into the receive ring
    /// of the pair its flow hashes to (behind any frames already waiting there), publishing each pair's used entries
    /// once at the end; then runs transmit passes left over from an exhausted budget.
    public func service() {
        port.acknowledgeWork()
        refreshLink()
        if isRunning {
            for pair in pairs where pair.hasWaitingFrames { pair.receivePending() }
        }
        var budget = FramePort.defaultQueueCapacity * 4
        while budget > 0 {
            // One lock acquisition per batch; frames are steered and placed outside the lock.
            let taken = port.drainInbound(limit: budget) { frame in steerAndAccept(frame) }
            guard taken > 0 else { break }
            budget -= taken
        }
        guard isRunning else { return }
        for pair in pairs {
            pair.closeReceiveBatch()
            if pair.transmitPending { pair.transmitPass() }
        }
        if budget == 0 && port.queuedFrames > 0 { statistics[.serviceBudgetExhausted] &+= 1 }
    }

    /// Services queue pair `index` only: its pending receive frames and transmit ring. May run concurrently with
    /// other pairs' calls (see the type's threading contract).
    public func servicePair(_ index: Int) {
        guard isRunning, pairs.indices.contains(index) else { return }
        pairs[index].service()
    }

    /// One handle per queue pair the device offers, for a host that services pairs on threads of its own.
    public var queuePairHandles: [VirtioQueuePairHandle] { pairs.map { VirtioQueuePairHandle(card: self, pair: $0) } }

    /// Whether the driver finished initialisation and the device is not broken.
    var isRunning: Bool { deviceStatus.contains(.driverOK) && !deviceStatus.contains(.needsReset) }

    /// Virtio reset (status 0): every queue, feature and register to its initial state. PCI config and the MSI-X
    /// table are not part of it.
    func deviceReset() {
        deviceStatus = []
        driverFeatures = []
        negotiated = []
        deviceFeatureSelect = 0
        driverFeatureSelect = 0
        queueSelect = 0
        configVector = virtioNoVector
        isr = 0
        pin.set(false)
        for queue in queues { queue.reset() }
        for pair in pairs { pair.reset() }
        currentMAC = macAddress
        filter = ReceiveFilter()
        activeQueuePairs = 1
        guestOffloads = []
        headerLength = 10
        announcing = false
        lastDriverMode = .none
        msix.clearPending()
        port.setPromiscuous(filter.promiscuous)
        lastLinkUp = linkUp
    }

    /// Link state from the cable and the attachment; a change raises a config interrupt once the driver is up.
    func refreshLink() {
        guard linkChange() != nil else { return }
        configChanged()
    }

    /// The device config changed: bump the generation, tell the driver.
    func configChanged() {
        configGeneration &+= 1
        guard deviceStatus.contains(.driverOK) else { return }
        signalConfig()
    }

    /// Sets VIRTIO_NET_S_ANNOUNCE (with GUEST_ANNOUNCE), asking the guest to announce itself (after migration, a
    /// link flap). The guest acknowledges with VIRTIO_NET_CTRL_ANNOUNCE_ACK.
    public func announce() {
        guard negotiated.contains(.guestAnnounce), deviceStatus.contains(.driverOK) else { return }
        announcing = true
        configChanged()
    }

    /// A ring broke: DEVICE_NEEDS_RESET, a config interrupt, and a counter. The device stops using its queues until
    /// the driver resets it.
    func fail(_ error: VirtqueueError) {
        statistics.count(error)
        guard !deviceStatus.contains(.needsReset) else { return }
        statistics[.needsResetEvents] &+= 1
        deviceStatus.insert(.needsReset)
        if deviceStatus.contains(.driverOK) { signalConfig() } else { configGeneration &+= 1 }
    }

    /// The device status as the driver reads it.
    public var status: VirtioDeviceStatus { deviceStatus }

    public var counters: [Counter] {
        var total = VirtioQueuePairStatistics()
        for pair in pairs { total.add(pair.statistics) }
        var notifications: UInt64 = 0
        var wanted: UInt64 = 0
        var suppressed: UInt64 = 0
        for queue in queues {
            notifications &+= queue.notifications
            wanted &+= queue.interruptsWanted
            suppressed &+= queue.interruptsSuppressed
        }
        return total.counters + statistics.counters + [
            Counter("notifications", notifications),
            Counter("used_interrupts_wanted", wanted),
            Counter("used_interrupts_suppressed", suppressed),
        ] + functionCounters
    }
}

extension VirtioNetCard: PCIFunctionCard {
    package func cableDidChange() { refreshLink() }
}
