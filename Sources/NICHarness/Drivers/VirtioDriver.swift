import NICCore
import NICTrace
import VirtioNet

/// Plays Linux's virtio_net over virtio_pci against a virtio-net card through a ``CardHarness``: the modern
/// interface found by walking the capability list (or the legacy I/O header, as `virtio_pci.force_legacy=1` does),
/// reset, ACKNOWLEDGE, DRIVER, feature negotiation with FEATURES_OK read back, queues set up through common config or
/// by page frame number, MSI-X vectors when asked, DRIVER_OK, the receive queue filled (small or mergeable buffers),
/// transmit with and without checksum and segmentation offload, control-queue commands, config interrupts for link
/// changes, and reset. Split rings by default, packed rings as an option. Run with a ``TraceRecorder`` attached, a
/// session becomes a trace fixture.
public final class VirtioDriver {
    /// How the driver brings the device up.
    public struct Options: Hashable, Sendable {
        /// Use the legacy I/O interface in BAR0 (`virtio_pci.force_legacy=1`).
        public var legacy = false
        /// Negotiate VIRTIO_F_RING_PACKED (modern only).
        public var packed = false
        /// Negotiate VIRTIO_NET_F_MRG_RXBUF: receive buffers of ``VirtioDriver/mergeableBufferSize`` bytes merged
        /// for larger frames.
        public var mergeable = false
        /// Program MSI-X vectors: 0 for config changes, 1 + queue index for each queue.
        public var msix = false
        /// Negotiate the control queue and its commands (RX mode, MAC table, VLAN, MQ, announce).
        public var controlQueue = true
        /// Negotiate transmit checksum and segmentation offload (CSUM, HOST_TSO4/6, HOST_UFO) and receive checksum
        /// offload (GUEST_CSUM).
        public var offloads = true

        public init(
            legacy: Bool = false, packed: Bool = false, mergeable: Bool = false, msix: Bool = false,
            controlQueue: Bool = true, offloads: Bool = true
        ) {
            self.legacy = legacy
            self.packed = packed
            self.mergeable = mergeable
            self.msix = msix
            self.controlQueue = controlQueue
            self.offloads = offloads
        }
    }

    /// Where the modern interface's structures are, from the vendor capabilities.
    public struct ModernLayout: Sendable {
        public var common: (bar: Int, offset: UInt64)
        public var notify: (bar: Int, offset: UInt64, multiplier: UInt64)
        public var isr: (bar: Int, offset: UInt64)
        public var device: (bar: Int, offset: UInt64)
    }

    /// Device status bits.
    public enum Status {
        public static let acknowledge: UInt8 = 1
        public static let driver: UInt8 = 2
        public static let driverOK: UInt8 = 4
        public static let featuresOK: UInt8 = 8
        public static let needsReset: UInt8 = 0x40
        public static let failed: UInt8 = 0x80
    }

    /// Guest-memory layout: a 64 KiB area per queue, a control-command area, 2 KiB receive buffers and 16 KiB
    /// transmit buffers (at most 256 of each).
    public enum Layout {
        public static let rings: UInt64 = 0x10000
        public static let ringStride: UInt64 = 0x10000
        public static let control: UInt64 = 0x40000
        public static let receiveBuffers: UInt64 = 0x100000
        public static let receiveStride: UInt64 = 0x800
        public static let transmitBuffers: UInt64 = 0x400000
        public static let transmitStride: UInt64 = 0x4000
        /// The most entries the driver uses per queue.
        public static let maximumQueueSize = 256
    }

    /// Receive buffer size with mergeable buffers (header included), as Linux's minimum for a 1500-byte MTU.
    public static let mergeableBufferSize = 1536
    /// Receive buffer size without: the header and GOOD_PACKET_LEN (1518 bytes).
    public var smallBufferSize: Int { headerLength + 1518 }

    public let harness: CardHarness
    public private(set) var options: Options
    /// The modern layout, once probed (nil on the legacy interface).
    public private(set) var modern: ModernLayout?
    /// What the device offered, and what was negotiated.
    public private(set) var deviceFeatures: VirtioFeatures = []
    public private(set) var features: VirtioFeatures = []
    /// The virtio-net header length in force: 12, or 10 for a legacy driver without mergeable buffers.
    public private(set) var headerLength = 12
    /// Whether MSI-X is in use.
    public internal(set) var msixEnabled = false
    /// The MAC address read from device config.
    public private(set) var macAddress: MACAddress?
    /// The link as the last config read found it.
    public private(set) var linkStatus = true
    /// Whether the device is reset and acknowledged with its features read, ready for ``open(jumbo:)``.
    public private(set) var probed = false

    var receiveQueue: VirtioDriverQueue?
    var transmitQueue: VirtioDriverQueue?
    var controlQueue: VirtioDriverQueue?
    /// The guest buffer each outstanding receive or transmit token holds.
    var receiveBufferOf: [UInt64] = []
    var transmitBufferOf: [UInt64] = []
    var freeReceiveBuffers: [UInt64] = []
    var freeTransmitBuffers: [UInt64] = []
    /// A frame spread over mergeable buffers, waiting for the rest: the bytes so far and the buffers still to come.
    var merging: (bytes: [UInt8], remaining: Int)?
    /// The header of the frame being merged.
    var pendingHeader: [UInt8] = []

    /// Frames received, in order.
    public internal(set) var received: [[UInt8]] = []
    /// The virtio-net header of each received frame (the first buffer's).
    public internal(set) var receivedHeaders: [[UInt8]] = []
    /// Receive buffers the driver dropped (too short, a broken merge).
    public internal(set) var receiveErrors = 0
    /// Virtio reports no transmit errors; this stays 0 unless a used entry is inconsistent.
    public internal(set) var transmitErrors = 0
    /// Config changes the interrupt handler saw.
    public internal(set) var configChanges = 0
    /// The acknowledgement of each control command, in order (0 = OK).
    public internal(set) var controlAcks: [UInt8] = []

    public init(harness: CardHarness, options: Options = Options()) {
        self.harness = harness
        self.options = options
    }

    /// The MSI-X vector for config changes, and for queue `index`.
    static let configVector = 0
    static func vector(forQueue index: Int) -> Int { 1 + index }

    // MARK: PCI

    /// pci_enable_device and pci_set_master: BAR0 (legacy I/O), BAR1 (MSI-X), BAR4/5 (64-bit modern), decoding and
    /// bus mastering on.
    public func enableDevice() {
        _ = harness.configRead(0x00, width: 4, comment: "vendor and device ID")
        _ = harness.configRead(0x2C, width: 4, comment: "subsystem IDs: virtio device 1 (net)")
        _ = harness.configRead(0x08, width: 1, comment: "revision")
        harness.configWrite(0x10, width: 4, value: 0xC001, comment: "BAR0: legacy I/O header")
        harness.configWrite(0x14, width: 4, value: 0xFEBF_0000, comment: "BAR1: MSI-X table and PBA")
        harness.configWrite(0x20, width: 4, value: 0xFE00_0000, comment: "BAR4: modern structures (64-bit)")
        harness.configWrite(0x24, width: 4, value: 0)
        harness.configWrite(0x04, width: 2, value: 0x0007, comment: "I/O, memory, bus master")
    }

    /// The capabilities from 0x34, at most 48 of them: (offset, ID).
    private func capabilities() -> [(offset: Int, id: UInt8)] {
        var found: [(offset: Int, id: UInt8)] = []
        guard harness.configRead(0x06, width: 2, comment: "status: capability list") & 0x10 != 0 else { return [] }
        var pointer = Int(harness.configRead(0x34, width: 1, comment: "capabilities pointer")) & 0xFC
        var seen = Set<Int>()
        while pointer >= 0x40, found.count < 48, seen.insert(pointer).inserted {
            let header = harness.configRead(pointer, width: 2)
            found.append((pointer, UInt8(header & 0xFF)))
            pointer = Int(header >> 8) & 0xFC
        }
        return found
    }

    /// virtio_pci_modern_probe: the vendor capabilities (common, notify, ISR, device config), the first of each type
    /// that names a BAR the device has.
    public func findModernLayout() throws(HarnessError) -> ModernLayout {
        var common: (Int, UInt64)?
        var notify: (Int, UInt64, UInt64)?
        var isr: (Int, UInt64)?
        var device: (Int, UInt64)?
        for (offset, id) in capabilities() where id == 0x09 {
            let type = harness.configRead(offset + 3, width: 1, comment: "cfg_type")
            let bar = Int(harness.configRead(offset + 4, width: 1))
            guard bar < 6, harness.space(ofBAR: bar) == .memory else { continue }
            let start = UInt64(harness.configRead(offset + 8, width: 4))
            _ = harness.configRead(offset + 12, width: 4, comment: "length")
            switch type {
            case 1 where common == nil: common = (bar, start)
            case 2 where notify == nil:
                let multiplier = UInt64(harness.configRead(offset + 16, width: 4, comment: "notify_off_multiplier"))
                notify = (bar, start, multiplier)
            case 3 where isr == nil: isr = (bar, start)
            case 4 where device == nil: device = (bar, start)
            default: continue
            }
        }
        guard let common, let notify, let isr, let device else {
            throw HarnessError("virtio: the modern capabilities are incomplete")
        }
        return ModernLayout(common: common, notify: notify, isr: isr, device: device)
    }

    /// The MSI-X capability: (offset, table BAR, table offset).
    func findMSIX() -> (offset: Int, bar: Int, table: UInt64)? {
        guard let (offset, _) = capabilities().first(where: { $0.id == 0x11 }) else { return nil }
        let table = harness.configRead(offset + 4, width: 4, comment: "MSI-X table BIR and offset")
        return (offset, Int(table & 7), UInt64(table & ~7))
    }

    // MARK: Registers

    private var legacyConfigBase: UInt64 { msixEnabled ? 0x18 : 0x14 }

    func common(_ offset: UInt64, _ width: Int, comment: String? = nil) -> UInt64 {
        guard let modern else { return 0 }
        return harness.read(
            bar: modern.common.bar, offset: modern.common.offset + offset, width: width, comment: comment)
    }

    func setCommon(_ offset: UInt64, _ width: Int, _ value: UInt64, comment: String? = nil) {
        guard let modern else { return }
        harness.write(
            bar: modern.common.bar, offset: modern.common.offset + offset, width: width, value: value, comment: comment)
    }

    /// The device status register (common config 0x14, or legacy 0x12).
    public func readStatus() -> UInt8 {
        UInt8(truncatingIfNeeded: options.legacy ? harness.read(bar: 0, offset: 0x12, width: 1) : common(0x14, 1))
    }

    public func writeStatus(_ status: UInt8, comment: String? = nil) {
        if options.legacy {
            harness.write(bar: 0, offset: 0x12, width: 1, value: UInt64(status), comment: comment)
        } else {
            setCommon(0x14, 1, UInt64(status), comment: comment)
        }
    }

    /// Reads device config (virtio_cread): legacy after the header, modern through the device capability, retried
    /// while config_generation changes (at most four times).
    func readConfig(_ offset: UInt64, _ width: Int) -> UInt64 {
        guard let modern else {
            return harness.read(bar: 0, offset: legacyConfigBase + offset, width: width)
        }
        var value: UInt64 = 0
        for _ in 0..<4 {
            let before = common(0x15, 1, comment: "config_generation")
            value = harness.read(bar: modern.device.bar, offset: modern.device.offset + offset, width: width)
            if common(0x15, 1) == before { break }
        }
        return value
    }

    /// The ISR byte (read-clear): bit 0 queue, bit 1 config.
    public func readISR() -> UInt8 {
        guard let modern else { return UInt8(truncatingIfNeeded: harness.read(bar: 0, offset: 0x13, width: 1)) }
        return UInt8(
            truncatingIfNeeded: harness.read(bar: modern.isr.bar, offset: modern.isr.offset, width: 1, comment: "ISR"))
    }

    /// Notifies the device about `queue` (vp_notify): the legacy notify register or the queue's notify address.
    func notify(_ queue: VirtioDriverQueue) {
        guard let modern else {
            return harness.write(bar: 0, offset: 0x10, width: 2, value: UInt64(queue.index), comment: "notify")
        }
        harness.write(
            bar: modern.notify.bar, offset: modern.notify.offset + notifyOffsets[queue.index, default: 0], width: 2,
            value: UInt64(queue.index), comment: "notify queue \(queue.index)")
    }

    /// Each modern queue's offset in the notify region (queue_notify_off × multiplier).
    var notifyOffsets: [Int: UInt64] = [:]

    // MARK: Probe

    /// vp_reset: status 0, then read it back until the device shows 0 (at most eight reads).
    public func resetDevice() throws(HarnessError) {
        writeStatus(0, comment: "reset")
        probed = false
        for _ in 0..<8 where readStatus() == 0 {
            forgetQueues()
            return
        }
        throw HarnessError("virtio: the device did not reset")
    }

    private func forgetQueues() {
        receiveQueue = nil
        transmitQueue = nil
        controlQueue = nil
        merging = nil
        notifyOffsets = [:]
        msixEnabled = false
    }

    /// virtio_dev_probe up to the features: the transport (modern capabilities unless legacy), reset, ACKNOWLEDGE,
    /// DRIVER, the device's features, and the MAC address from device config.
    public func probe() throws(HarnessError) -> DriverIdentity {
        modern = options.legacy ? nil : try findModernLayout()
        try resetDevice()
        writeStatus(Status.acknowledge, comment: "ACKNOWLEDGE")
        writeStatus(Status.acknowledge | Status.driver, comment: "DRIVER")
        if modern != nil {
            setCommon(0x00, 4, 0, comment: "device_feature_select 0")
            let low = common(0x04, 4, comment: "device_feature")
            setCommon(0x00, 4, 1, comment: "device_feature_select 1")
            let high = common(0x04, 4, comment: "device_feature")
            deviceFeatures = VirtioFeatures(rawValue: high << 32 | low)
        } else {
            deviceFeatures = VirtioFeatures(rawValue: harness.read(bar: 0, offset: 0x00, width: 4, comment: "features"))
        }
        var mac: [UInt8] = []
        for offset in 0..<6 { mac.append(UInt8(truncatingIfNeeded: readConfig(UInt64(offset), 1))) }
        macAddress = MACAddress(bytes: mac)
        guard let macAddress else { throw HarnessError("virtio: no MAC address in device config") }
        probed = true
        let interface = modern == nil ? "legacy" : "modern"
        let valid = deviceFeatures.contains(.mac) && (modern == nil || deviceFeatures.contains(.version1))
        return DriverIdentity(chipName: "virtio-net (\(interface))", macAddress: macAddress, valid: valid)
    }

    /// The features the driver asks for (virtnet's feature table, less what `options` turns off).
    func wantedFeatures(jumbo: Bool) -> VirtioFeatures {
        var wanted: VirtioFeatures = [.mac, .status]
        if !jumbo { wanted.insert(.mtu) }
        if options.mergeable || jumbo { wanted.insert(.mergeableReceiveBuffers) }
        if options.controlQueue {
            wanted.formUnion([
                .controlQueue, .controlReceive, .controlVLAN, .controlReceiveExtra, .guestAnnounce, .multiqueue,
                .controlMACAddress, .controlGuestOffloads,
            ])
        }
        if options.offloads { wanted.formUnion([.checksum, .hostTSO4, .hostTSO6, .hostECN, .hostUFO, .guestChecksum]) }
        if !options.legacy { wanted.insert(.version1) }
        if options.packed && !options.legacy { wanted.insert(.packedRing) }
        return wanted
    }

    /// Negotiates features: writes the driver's and, on the modern interface, sets FEATURES_OK and reads it back.
    public func negotiate(jumbo: Bool = false) throws(HarnessError) {
        features = deviceFeatures.intersection(wantedFeatures(jumbo: jumbo))
        if options.legacy {
            harness.write(
                bar: 0, offset: 0x04, width: 4, value: features.rawValue & 0xFFFF_FFFF, comment: "guest features")
            features = VirtioFeatures(rawValue: features.rawValue & 0xFFFF_FFFF)
        } else {
            for select in 0..<2 {
                setCommon(0x08, 4, UInt64(select), comment: "driver_feature_select \(select)")
                setCommon(0x0C, 4, features.rawValue >> (32 * UInt64(select)) & 0xFFFF_FFFF, comment: "driver_feature")
            }
            writeStatus(Status.acknowledge | Status.driver | Status.featuresOK, comment: "FEATURES_OK")
            guard readStatus() & Status.featuresOK != 0 else {
                writeStatus(Status.acknowledge | Status.driver | Status.failed, comment: "FAILED")
                throw HarnessError("virtio: the device refused features \(features)")
            }
        }
        headerLength = options.legacy && !features.contains(.mergeableReceiveBuffers) ? 10 : 12
    }

    /// virtio_device_ready: DRIVER_OK.
    public func driverReady() {
        let status = Status.acknowledge | Status.driver | (options.legacy ? 0 : Status.featuresOK) | Status.driverOK
        writeStatus(status, comment: "DRIVER_OK")
    }

    /// virtnet_probe and virtnet_open in one: features, queues, DRIVER_OK, the link from device config, the receive
    /// queue filled and kicked, and (with the control queue) RX mode and MAC filter as virtnet_set_rx_mode sets them.
    public func open(jumbo: Bool = false) throws(HarnessError) {
        if !probed { _ = try probe() }
        try negotiate(jumbo: jumbo)
        try setUpQueues()
        driverReady()
        try refreshLink()
        try fillReceive()
        if controlQueue != nil {
            if features.contains(.multiqueue) { _ = try setQueuePairs(1) }
            _ = try setReceiveMode(promiscuous: false, allMulticast: false)
            _ = try setMACTable(unicast: [], multicast: [])
        }
    }

    /// Reads the link from device config (VIRTIO_NET_S_LINK_UP; always up without VIRTIO_NET_F_STATUS) and answers a
    /// pending announce (virtnet_config_changed_work).
    public func refreshLink() throws(HarnessError) {
        guard features.contains(.status) else {
            linkStatus = true
            return
        }
        let status = readConfig(6, 2)
        linkStatus = status & 1 != 0
        if status & 2 != 0, features.contains(.guestAnnounce), controlQueue != nil {
            _ = try control(3, 0, [], comment: "VIRTIO_NET_CTRL_ANNOUNCE_ACK")
        }
    }

    /// The interrupt handler (vp_interrupt, or the MSI-X vectors) and a NAPI poll: a config change re-reads the link;
    /// both data queues are reaped and the receive queue refilled.
    public func handleInterrupt() throws(HarnessError) {
        var configChanged = false
        if msixEnabled {
            configChanged = harness.msixMessages(vector: Self.configVector) > 0
            if let receiveQueue { _ = harness.msixMessages(vector: Self.vector(forQueue: receiveQueue.index)) }
            if let transmitQueue { _ = harness.msixMessages(vector: Self.vector(forQueue: transmitQueue.index)) }
        } else {
            configChanged = readISR() & 2 != 0
        }
        if configChanged {
            configChanges += 1
            try refreshLink()
        }
        try reapTransmit()
        try reapReceive()
    }

    /// virtnet_remove's reset: status 0, every queue forgotten.
    @discardableResult
    public func close() throws(HarnessError) -> Int {
        try resetDevice()
        return 0
    }
}

extension VirtioDriver: GuestDriver {
    public func identify() throws(HarnessError) -> DriverIdentity { try probe() }

    /// Opens with the driver's options; `jumbo` adds mergeable receive buffers (and leaves VIRTIO_NET_F_MTU out), so
    /// a 9014-byte frame arrives over several buffers.
    public func start(jumbo: Bool) throws(HarnessError) { try open(jumbo: jumbo) }

    public func send(_ frame: [UInt8]) throws(HarnessError) -> Bool { try transmit(frame) }

    public func serviceInterrupt() throws(HarnessError) { try handleInterrupt() }

    /// The link in device config.
    public func linkUp() -> Bool {
        do { try refreshLink() } catch { return false }
        return linkStatus
    }

    /// Resets the device; virtio reports no missed frames.
    public func stop() -> UInt64 {
        _ = try? close()
        return 0
    }
}
