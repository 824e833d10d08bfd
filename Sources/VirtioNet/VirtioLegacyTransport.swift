import NICCore

/// The legacy interface in BAR0 (virtio 1.2 §4.1.4.8): the header of ``LegacyRegister``, then the device config at
/// 20, or at 24 while MSI-X is enabled (the config and queue vector registers sit in between). Header registers
/// answer only at their own offset and width; anything else reads all-ones and writes nothing.
extension VirtioNetCard {
    func readLegacy(offset: Int, width: Int) -> UInt64 {
        let configStart = LegacyRegister.headerLength(msixEnabled: msixEnabled)
        if offset >= configStart { return readDeviceConfig(offset: offset - configStart, width: width) }
        guard let register = LegacyRegister.at(offset, width: width) else {
            statistics[.badRegisterAccesses] &+= 1
            return Self.allOnes(width: width)
        }
        switch register {
        case .deviceFeatures: return UInt64(legacyOfferedFeatures)
        case .driverFeatures: return UInt64(UInt32(truncatingIfNeeded: driverFeatures.rawValue))
        case .queueAddress:
            guard let queue = selectedQueue else { return 0 }
            return (queue.descriptorArea >> 12) & 0xFFFF_FFFF
        case .queueSize:
            guard let queue = selectedQueue else { return 0 }
            return UInt64(queue.maximumSize)
        case .queueSelect: return UInt64(queueSelect)
        case .queueNotify: return 0
        case .deviceStatus: return UInt64(deviceStatus.rawValue)
        case .isrStatus: return UInt64(readISR())
        case .configVector: return UInt64(configVector)
        case .queueVector: return UInt64(selectedQueue?.vector ?? virtioNoVector)
        }
    }

    func writeLegacy(offset: Int, width: Int, value: UInt64) {
        let configStart = LegacyRegister.headerLength(msixEnabled: msixEnabled)
        if offset >= configStart {
            writeDeviceConfig(offset: offset - configStart, width: width, value: value)
            return
        }
        guard let register = LegacyRegister.at(offset, width: width) else {
            statistics[.badRegisterAccesses] &+= 1
            return
        }
        lastDriverMode = .legacy
        switch register {
        case .driverFeatures:
            // Features are fixed once the driver is running.
            guard !deviceStatus.contains(.driverOK) else { return }
            acceptLegacyFeatures(UInt32(truncatingIfNeeded: value))
        case .queueAddress:
            guard let queue = selectedQueue else { return }
            let frame = UInt32(truncatingIfNeeded: value)
            guard frame != 0 else {
                queue.reset()
                return
            }
            guard !queue.enabled else { return }
            // Legacy rings are always the device's maximum size, a power of two.
            guard queue.maximumSize.nonzeroBitCount == 1 else {
                fail(.badQueueSize)
                return
            }
            let areas = SplitLayout.legacyAreas(pageFrame: frame, size: queue.maximumSize)
            queue.size = queue.maximumSize
            queue.descriptorArea = areas.descriptors
            queue.driverArea = areas.driver
            queue.deviceArea = areas.device
            queue.enabled = true
            if deviceStatus.contains(.driverOK) { configure(queue) }
        case .queueSelect: queueSelect = Int(value & 0xFFFF)
        case .queueNotify: notify(queueIndex: Int(value & 0xFFFF))
        case .deviceStatus: writeStatus(UInt8(truncatingIfNeeded: value))
        case .configVector: configVector = acceptedVector(UInt16(truncatingIfNeeded: value))
        case .queueVector:
            selectedQueue?.vector = acceptedVector(UInt16(truncatingIfNeeded: value))
        case .deviceFeatures, .queueSize, .isrStatus: break
        }
    }
}
