import NICCore

/// The virtio 1.x interface in BAR4: common cfg (``CommonRegister``), ISR, device config and notify regions at the
/// offsets of ``VirtioPCILayout``.
extension VirtioNetCard {
    func readModern(offset: Int, width: Int) -> UInt64 {
        let inner = offset % Int(VirtioPCILayout.regionLength)
        switch VirtioPCILayout.ModernRegion(containing: offset) {
        case .common: return readCommon(offset: inner, width: width)
        case .isr: return inner == 0 ? UInt64(readISR()) : 0
        case .device: return readDeviceConfig(offset: inner, width: width)
        case .notify, nil: return 0
        }
    }

    func writeModern(offset: Int, width: Int, value: UInt64) {
        let inner = offset % Int(VirtioPCILayout.regionLength)
        switch VirtioPCILayout.ModernRegion(containing: offset) {
        case .common: writeCommon(offset: inner, width: width, value: value)
        case .device: writeDeviceConfig(offset: inner, width: width, value: value)
        case .notify:
            // queue_notify_off is the queue index: the address says which queue.
            guard inner % Int(VirtioPCILayout.notifyMultiplier) == 0 else {
                statistics[.badRegisterAccesses] &+= 1
                return
            }
            notify(queueIndex: inner / Int(VirtioPCILayout.notifyMultiplier))
        case .isr, nil: break
        }
    }

    /// A common-cfg register: at its offset with its width; 64-bit addresses also as two 32-bit halves.
    private func commonAccess(offset: Int, width: Int) -> (CommonRegister, shift: UInt64)? {
        guard let (register, inner) = CommonRegister.containing(offset) else { return nil }
        if register.width == 8 {
            guard (width == 8 && inner == 0) || (width == 4 && (inner == 0 || inner == 4)) else { return nil }
            return (register, UInt64(8 * inner))
        }
        guard inner == 0, width == register.width else { return nil }
        return (register, 0)
    }

    func readCommon(offset: Int, width: Int) -> UInt64 {
        guard let (register, shift) = commonAccess(offset: offset, width: width) else {
            statistics[.badRegisterAccesses] &+= 1
            return offset < 0x40 ? Self.allOnes(width: width) : 0
        }
        let queue = selectedQueue
        let value: UInt64
        switch register {
        case .deviceFeatureSelect: value = UInt64(deviceFeatureSelect)
        case .deviceFeature:
            value =
                deviceFeatureSelect < 2
                ? (offeredFeatures.rawValue >> (32 * UInt64(deviceFeatureSelect))) & 0xFFFF_FFFF : 0
        case .driverFeatureSelect: value = UInt64(driverFeatureSelect)
        case .driverFeature:
            value =
                driverFeatureSelect < 2
                ? (driverFeatures.rawValue >> (32 * UInt64(driverFeatureSelect))) & 0xFFFF_FFFF : 0
        case .configVector: value = UInt64(configVector)
        case .queueCount: value = UInt64(queueCount)
        case .deviceStatus: value = UInt64(deviceStatus.rawValue)
        case .configGeneration: value = UInt64(configGeneration)
        case .queueSelect: value = UInt64(queueSelect)
        case .queueSize: value = UInt64(queue?.size ?? 0)
        case .queueVector: value = UInt64(queue?.vector ?? virtioNoVector)
        case .queueEnable: value = queue?.enabled == true ? 1 : 0
        case .queueNotifyOffset: value = queue == nil ? 0 : UInt64(queueSelect)
        case .queueDescriptor: value = queue?.descriptorArea ?? 0
        case .queueDriver: value = queue?.driverArea ?? 0
        case .queueDevice: value = queue?.deviceArea ?? 0
        case .queueNotifyData, .queueReset: value = 0
        }
        return value >> shift
    }

    func writeCommon(offset: Int, width: Int, value: UInt64) {
        guard let (register, shift) = commonAccess(offset: offset, width: width) else {
            statistics[.badRegisterAccesses] &+= 1
            return
        }
        lastDriverMode = .modern
        let queue = selectedQueue
        switch register {
        case .deviceFeatureSelect: deviceFeatureSelect = UInt32(truncatingIfNeeded: value)
        case .driverFeatureSelect: driverFeatureSelect = UInt32(truncatingIfNeeded: value)
        case .driverFeature:
            guard driverFeatureSelect < 2, !deviceStatus.contains(.featuresOK) else { return }
            let half = 32 * UInt64(driverFeatureSelect)
            let raw = (driverFeatures.rawValue & ~(0xFFFF_FFFF << half)) | ((value & 0xFFFF_FFFF) << half)
            driverFeatures = VirtioFeatures(rawValue: raw)
        case .configVector: configVector = acceptedVector(UInt16(truncatingIfNeeded: value))
        case .deviceStatus: writeStatus(UInt8(truncatingIfNeeded: value))
        case .queueSelect: queueSelect = Int(value & 0xFFFF)
        case .queueSize:
            guard let queue, !queue.enabled else { return }
            let size = UInt16(truncatingIfNeeded: value)
            guard size >= 1, size <= queue.maximumSize else {
                statistics[.badQueueSizeWrites] &+= 1
                return
            }
            queue.size = size
        case .queueVector:
            guard let queue else { return }
            queue.vector = acceptedVector(UInt16(truncatingIfNeeded: value))
        case .queueEnable:
            guard let queue, value & 1 == 1, !queue.enabled else { return }
            queue.enabled = true
            if deviceStatus.contains(.driverOK) { configure(queue) }
        case .queueDescriptor, .queueDriver, .queueDevice:
            guard let queue, !queue.enabled else { return }
            func merged(_ old: UInt64) -> UInt64 {
                if width == 8 { return value }
                let mask: UInt64 = 0xFFFF_FFFF << shift
                return (old & ~mask) | ((value & 0xFFFF_FFFF) << shift)
            }
            switch register {
            case .queueDescriptor: queue.descriptorArea = merged(queue.descriptorArea)
            case .queueDriver: queue.driverArea = merged(queue.driverArea)
            default: queue.deviceArea = merged(queue.deviceArea)
            }
        case .deviceFeature, .queueCount, .configGeneration, .queueNotifyOffset, .queueNotifyData, .queueReset: break
        }
    }
}
