import NICCore
import NICTrace
import VirtioNet

extension VirtioDriver {
    /// find_vqs: MSI-X (when asked), then receive, transmit and (with CTRL_VQ) control queues.
    public func setUpQueues() throws(HarnessError) {
        if options.msix { try enableMSIX() }
        let maximumPairs =
            features.contains(.multiqueue) ? max(1, Int(readConfig(8, 2))) : 1
        let receive = try setUpQueue(0, slot: 0)
        let transmit = try setUpQueue(1, slot: 1)
        receiveQueue = receive
        transmitQueue = transmit
        receiveBufferOf = [UInt64](repeating: 0, count: receive.size)
        freeReceiveBuffers = (0..<receive.size).reversed().map {
            Layout.receiveBuffers + UInt64($0) * Layout.receiveStride
        }
        transmitBufferOf = [UInt64](repeating: 0, count: transmit.size)
        freeTransmitBuffers = (0..<transmit.size).reversed().map {
            Layout.transmitBuffers + UInt64($0) * Layout.transmitStride
        }
        if features.contains(.controlQueue) { controlQueue = try setUpQueue(2 * maximumPairs, slot: 2) }
    }

    /// Programs every MSI-X table entry the driver uses (address 0xFEE00000, data = vector, unmasked) and enables
    /// MSI-X (pci_alloc_irq_vectors).
    private func enableMSIX() throws(HarnessError) {
        guard let (offset, bar, table) = findMSIX() else { throw HarnessError("virtio: no MSI-X capability") }
        let control = harness.configRead(offset + 2, width: 2, comment: "MSI-X message control")
        let vectors = Int(control & 0x7FF) + 1
        for vector in 0..<vectors {
            let entry = table + 16 * UInt64(vector)
            harness.write(bar: bar, offset: entry, width: 4, value: 0xFEE0_0000, comment: "vector \(vector)")
            harness.write(bar: bar, offset: entry + 4, width: 4, value: 0)
            harness.write(bar: bar, offset: entry + 8, width: 4, value: UInt64(vector))
            harness.write(bar: bar, offset: entry + 12, width: 4, value: 0)
        }
        harness.configWrite(offset + 2, width: 2, value: 0x8000, comment: "MSI-X enable")
        msixEnabled = true
        if options.legacy {
            harness.write(bar: 0, offset: 0x14, width: 2, value: UInt64(Self.configVector), comment: "config vector")
            _ = harness.read(bar: 0, offset: 0x14, width: 2)
        } else {
            setCommon(0x10, 2, UInt64(Self.configVector), comment: "msix_config")
            guard common(0x10, 2) == UInt64(Self.configVector) else {
                throw HarnessError("virtio: the device refused the config vector")
            }
        }
    }

    private func setUpQueue(_ index: Int, slot: UInt64) throws(HarnessError) -> VirtioDriverQueue {
        let base = Layout.rings + slot * Layout.ringStride
        if options.legacy {
            harness.write(bar: 0, offset: 0x0E, width: 2, value: UInt64(index), comment: "queue select \(index)")
            let size = Int(harness.read(bar: 0, offset: 0x0C, width: 2, comment: "queue size"))
            guard size > 0, size <= Layout.maximumQueueSize, size & (size - 1) == 0 else {
                throw HarnessError("virtio: queue \(index) has size \(size)")
            }
            guard harness.read(bar: 0, offset: 0x08, width: 4, comment: "PFN: not yet active") == 0 else {
                throw HarnessError("virtio: queue \(index) is already active")
            }
            let queue = try VirtioDriverQueue(memory: harness, index: index, size: size, packed: false, base: base)
            if msixEnabled {
                let vector = UInt64(Self.vector(forQueue: index))
                harness.write(bar: 0, offset: 0x16, width: 2, value: vector, comment: "queue vector")
                guard harness.read(bar: 0, offset: 0x16, width: 2) == vector else {
                    throw HarnessError("virtio: the device refused vector \(vector)")
                }
            }
            harness.write(bar: 0, offset: 0x08, width: 4, value: base >> 12, comment: "queue PFN")
            return queue
        }
        setCommon(0x16, 2, UInt64(index), comment: "queue_select \(index)")
        let offered = Int(common(0x18, 2, comment: "queue_size"))
        guard offered > 0 else { throw HarnessError("virtio: queue \(index) is not available") }
        guard common(0x1C, 2, comment: "queue_enable") == 0 else {
            throw HarnessError("virtio: queue \(index) is already enabled")
        }
        var size = min(offered, Layout.maximumQueueSize)
        if !features.contains(.packedRing) { while size & (size - 1) != 0 { size &= size - 1 } }
        if size != offered { setCommon(0x18, 2, UInt64(size), comment: "queue_size") }
        let queue = try VirtioDriverQueue(
            memory: harness, index: index, size: size, packed: features.contains(.packedRing), base: base)
        if msixEnabled {
            let vector = UInt64(Self.vector(forQueue: index))
            setCommon(0x1A, 2, vector, comment: "queue_msix_vector")
            guard common(0x1A, 2) == vector else { throw HarnessError("virtio: the device refused vector \(vector)") }
        }
        for (offset, address) in [
            (UInt64(0x20), queue.descriptorArea), (0x28, queue.driverArea), (0x30, queue.deviceArea),
        ] {
            setCommon(offset, 4, address & 0xFFFF_FFFF)
            setCommon(offset + 4, 4, address >> 32)
        }
        let notifyOffset = common(0x1E, 2, comment: "queue_notify_off")
        notifyOffsets[index] = notifyOffset * (modern?.notify.multiplier ?? 0)
        setCommon(0x1C, 2, 1, comment: "queue_enable")
        return queue
    }
}
