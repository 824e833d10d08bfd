import NICCore

/// What both interfaces share: BAR dispatch, feature negotiation, the status register, queue lookup, notifications
/// and the device config.
extension VirtioNetCard {
    package func readRegister(bar: Int, offset: UInt64, width: Int) -> UInt64 {
        let offset = Int(offset)
        switch VirtioPCILayout.BAR(rawValue: bar) {
        case .legacy: return readLegacy(offset: offset, width: width)
        case .msix: return readMSIX(offset: offset, width: width)
        case .modern: return readModern(offset: offset, width: width)
        case nil: return Self.allOnes(width: width)
        }
    }

    package func writeRegister(bar: Int, offset: UInt64, width: Int, value: UInt64) {
        let offset = Int(offset)
        switch VirtioPCILayout.BAR(rawValue: bar) {
        case .legacy: writeLegacy(offset: offset, width: width, value: value)
        case .msix: writeMSIX(offset: offset, width: width, value: value)
        case .modern: writeModern(offset: offset, width: width, value: value)
        case nil: break
        }
    }

    // MARK: Features

    /// What the device offers through the modern interface.
    var offeredFeatures: VirtioFeatures {
        var features = VirtioFeatures.offered
        if maximumQueuePairs == 1 { features.remove(.multiqueue) }
        return features
    }

    /// What the legacy interface shows: the low 32 bits (no VERSION_1, no packed rings).
    var legacyOfferedFeatures: UInt32 { UInt32(truncatingIfNeeded: offeredFeatures.rawValue) }

    /// The legacy driver wrote its features: they apply at once, masked to what is offered and closed under the
    /// dependency rules (the legacy interface cannot refuse).
    func acceptLegacyFeatures(_ value: UInt32) {
        let requested = VirtioFeatures(rawValue: UInt64(value))
        let accepted = requested.intersection(offeredFeatures).closedUnderDependencies
        if accepted != requested { statistics[.featuresRefused] &+= 1 }
        driverFeatures = accepted
        apply(accepted)
    }

    /// FEATURES_OK through the modern interface: accepted only if everything is offered, VERSION_1 is there and no
    /// dependency rule is broken.
    func acceptModernFeatures() -> Bool {
        let requested = driverFeatures
        guard requested.isSubset(of: offeredFeatures), requested.contains(.version1),
            requested.brokenDependency == nil
        else {
            statistics[.featuresRefused] &+= 1
            return false
        }
        apply(requested)
        return true
    }

    private func apply(_ features: VirtioFeatures) {
        negotiated = features
        headerLength = features.contains(.version1) || features.contains(.mergeableReceiveBuffers) ? 12 : 10
        guestOffloads = features.intersection(.guestOffloads)
        filter.vlanFilterEnabled = features.contains(.controlVLAN)
    }

    // MARK: Status

    func writeStatus(_ value: UInt8) {
        guard value != 0 else {
            deviceReset()
            return
        }
        var new = VirtioDeviceStatus(rawValue: value)
        new.remove(.needsReset)
        if new.contains(.featuresOK), !deviceStatus.contains(.featuresOK) {
            if lastDriverMode == .legacy || !acceptModernFeatures() { new.remove(.featuresOK) }
        }
        if deviceStatus.contains(.needsReset) { new.insert(.needsReset) }
        let starting = new.contains(.driverOK) && !deviceStatus.contains(.driverOK)
        deviceStatus = new
        if starting { start() }
    }

    /// DRIVER_OK: every enabled queue takes its ring format from the features.
    private func start() {
        for queue in queues where queue.enabled { configure(queue) }
        lastLinkUp = linkUp
        port.setPromiscuous(filter.promiscuous)
    }

    func configure(_ queue: Virtqueue) {
        do throws(VirtqueueError) {
            try queue.configure(
                packed: negotiated.contains(.packedRing), eventIndex: negotiated.contains(.eventIndex),
                indirect: negotiated.contains(.indirectDescriptors))
            if queue !== controlQueue { try queue.requestNotifications() }
        } catch { fail(error) }
    }

    // MARK: Queues

    /// The queue the driver means by `index`: receive 2n and transmit 2n+1 for n below the pairs offered, and the
    /// control queue at 2 × max_virtqueue_pairs — or at 2 while VIRTIO_NET_F_MQ is not negotiated.
    func queue(at index: Int) -> Virtqueue? {
        let multiqueue = negotiated.contains(.multiqueue)
        let controlIndex = multiqueue ? 2 * maximumQueuePairs : 2
        if index == controlIndex { return controlQueue }
        let dataQueues = multiqueue ? 2 * maximumQueuePairs : 2
        guard index >= 0, index < dataQueues else { return nil }
        return queues[index]
    }

    /// The number of queues the modern interface reports (num_queues).
    var queueCount: Int { 2 * maximumQueuePairs + 1 }

    var selectedQueue: Virtqueue? { queue(at: queueSelect) }

    /// A doorbell for queue `index`. Unknown queues are ignored and counted.
    func notify(queueIndex index: Int) {
        guard let queue = queue(at: index) else {
            statistics[.notifyInvalidQueue] &+= 1
            return
        }
        queue.notifications &+= 1
        guard isRunning, queue.enabled else {
            statistics[.notifyNotReady] &+= 1
            return
        }
        if queue === controlQueue {
            processControlQueue()
            return
        }
        let pair = pairs[queue.index / 2]
        if queue.index % 2 == 0 { pair.receivePending() } else { pair.transmitPass() }
    }

    // MARK: Device config

    /// The device config bytes: mac, status, max_virtqueue_pairs, mtu.
    func deviceConfigByte(_ offset: Int) -> UInt8 {
        guard let (field, byte) = NetConfigField.containing(offset) else { return 0 }
        switch field {
        case .mac: return UInt8(truncatingIfNeeded: currentMAC.rawValue >> (8 * UInt64(5 - byte)))
        case .status:
            var status: UInt16 = linkUp ? NetConfigStatus.linkUp.mask : 0
            if announcing { status |= NetConfigStatus.announce.mask }
            return UInt8(truncatingIfNeeded: status >> (8 * byte))
        case .maxQueuePairs: return UInt8(truncatingIfNeeded: maximumQueuePairs >> (8 * byte))
        case .mtu: return UInt8(truncatingIfNeeded: mtu >> (8 * byte))
        }
    }

    func readDeviceConfig(offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<min(width, 8) { value |= UInt64(deviceConfigByte(offset + i)) << (8 * UInt64(i)) }
        return value
    }

    /// Only a legacy driver without VERSION_1 may write the MAC in the config.
    func writeDeviceConfig(offset: Int, width: Int, value: UInt64) {
        guard !negotiated.contains(.version1) else { return }
        var bytes = currentMAC.bytes
        var changed = false
        for i in 0..<min(width, 8) where offset + i < 6 {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))
            changed = true
        }
        guard changed, let mac = MACAddress(bytes: bytes) else { return }
        currentMAC = mac
    }

    // MARK: PCI cfg access capability

    /// The PCI cfg access window as the driver set it: BAR, offset, and a legal length, or `nil`.
    private var pciConfigAccessWindow: (bar: Int, offset: UInt64, length: Int)? {
        let base = pciConfigAccessCapability
        let bar = Int(config.read(offset: base + 4, width: 1))
        let offset = UInt64(config.read(offset: base + 8, width: 4))
        let length = Int(config.read(offset: base + 12, width: 4))
        guard length == 1 || length == 2 || length == 4 else { return nil }
        return (bar, offset, length)
    }

    private func touchesPCIConfigData(offset: Int, width: Int) -> Bool {
        let data = pciConfigAccessCapability + 16
        return offset < data + 4 && offset + width > data
    }

    /// A config read of pci_cfg_data reads the window's BAR first (with the read's side effects, as the spec asks).
    package func configWillRead(offset: Int, width: Int) {
        guard touchesPCIConfigData(offset: offset, width: width), let window = pciConfigAccessWindow else { return }
        statistics[.pciConfigAccessReads] &+= 1
        let value = barRead(window.bar, offset: window.offset, width: window.length)
        config.storeDeviceBytes(
            (0..<window.length).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) },
            at: pciConfigAccessCapability + 16)
    }

    /// A config write of pci_cfg_data writes the window's BAR.
    package func configDidWrite(offset: Int, width: Int) {
        guard touchesPCIConfigData(offset: offset, width: width), let window = pciConfigAccessWindow else { return }
        statistics[.pciConfigAccessWrites] &+= 1
        let data = config.read(offset: pciConfigAccessCapability + 16, width: 4)
        barWrite(window.bar, offset: window.offset, width: window.length, value: UInt64(data))
    }
}
