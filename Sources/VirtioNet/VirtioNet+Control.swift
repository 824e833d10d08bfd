import NICCore

/// The control queue's commands (virtio 1.2 §5.1.6.5): class, command, data; the device answers with one ack byte.
enum ControlCommand {
    /// The most command bytes the device reads; a longer command is answered with ERR.
    static let maximumLength = 65_536

    static let ok: UInt8 = 0
    static let error: UInt8 = 1

    enum Class: UInt8 {
        case receive = 0
        case mac, vlan, announce, multiqueue, guestOffloads
    }

    /// VIRTIO_NET_CTRL_RX_* commands, each with one byte: on (non-zero) or off.
    enum ReceiveMode: UInt8 {
        case promiscuous = 0
        case allMulticast, allUnicast, noMulticast, noUnicast, noBroadcast
    }

    /// VIRTIO_NET_CTRL_MAC_* commands: the filter tables, the address.
    enum MACCommand: UInt8 {
        case tableSet = 0
        case addressSet
    }

    /// VIRTIO_NET_CTRL_VLAN_* commands, each with a le16 VLAN ID.
    enum VLANCommand: UInt8 {
        case add = 0
        case delete
    }

    static let announceAck: UInt8 = 0
    static let queuePairsSet: UInt8 = 0
    static let guestOffloadsSet: UInt8 = 0
    static let vlanCount = 4096
    /// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX.
    static let maximumQueuePairs = 0x8000
}

extension VirtioNetCard {
    /// Runs every command the driver queued (at most a queue size), answering each. With event index the device then
    /// asks for the next notification (avail_event), as Linux decides whether to kick by it: a command queued after
    /// the last one was taken would otherwise wait forever while the driver spins for its answer.
    func processControlQueue() {
        let queue = controlQueue
        guard isRunning, queue.isReady else { return }
        var budget = Int(queue.size)
        do throws(VirtqueueError) {
            while budget > 0 {
                budget -= 1
                guard try queue.pop(into: controlChain) else {
                    try queue.requestNotifications()
                    guard try queue.hasAvailable() else { break }
                    continue
                }
                guard controlChain.readableBytes >= 2, controlChain.writableBytes >= 1 else {
                    // No class/command or nowhere to answer: the driver broke the protocol.
                    statistics[.controlMalformed] &+= 1
                    throw .readableAfterWritable
                }
                let length = min(controlChain.readableBytes, controlBuffer.count)
                let read = try controlBuffer.withMutableBytes { (buffer) throws(VirtqueueError) in
                    try controlChain.gather(
                        from: dma, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]))
                }
                statistics[.controlCommands] &+= 1
                // A command longer than the buffer is refused unread.
                let ack =
                    controlChain.readableBytes <= controlBuffer.count
                    ? runControlCommand(length: read) : ControlCommand.error
                if ack != ControlCommand.ok { statistics[.controlErrors] &+= 1 }
                let written = try [ack].withBytes { (bytes) throws(VirtqueueError) in
                    try controlChain.scatter(bytes, to: dma, at: 0)
                }
                try queue.push(controlChain, length: written)
            }
            if try queue.flush() { signalQueue(queue) }
        } catch {
            fail(error)
        }
    }

    /// Executes the command in `controlBuffer[0..<length]`; returns the ack.
    private func runControlCommand(length: Int) -> UInt8 {
        let data = Array(controlBuffer[2..<length])
        guard let commandClass = ControlCommand.Class(rawValue: controlBuffer[0]) else { return ControlCommand.error }
        let command = controlBuffer[1]
        let ok = ControlCommand.ok
        let error = ControlCommand.error
        switch commandClass {
        case .receive:
            guard negotiated.contains(.controlReceive), let mode = ControlCommand.ReceiveMode(rawValue: command),
                data.count == 1
            else { return error }
            if mode.rawValue >= 2, !negotiated.contains(.controlReceiveExtra) { return error }
            let on = data[0] != 0
            switch mode {
            case .promiscuous: filter.promiscuous = on
            case .allMulticast: filter.allMulticast = on
            case .allUnicast: filter.allUnicast = on
            case .noMulticast: filter.noMulticast = on
            case .noUnicast: filter.noUnicast = on
            case .noBroadcast: filter.noBroadcast = on
            }
            port.setPromiscuous(filter.promiscuous || filter.allUnicast)
            return ok
        case .mac:
            switch ControlCommand.MACCommand(rawValue: command) {
            case .tableSet:
                guard negotiated.contains(.controlReceive) else { return error }
                return setMACTables(data) ? ok : error
            case .addressSet:
                guard negotiated.contains(.controlMACAddress), data.count == 6, let mac = MACAddress(bytes: data)
                else { return error }
                currentMAC = mac
                configGeneration &+= 1
                return ok
            case nil: return error
            }
        case .vlan:
            guard negotiated.contains(.controlVLAN), data.count == 2,
                let vlanCommand = ControlCommand.VLANCommand(rawValue: command)
            else { return error }
            let vlan = Int(data.load(littleEndian: UInt16.self, at: 0) ?? 0)
            guard vlan < ControlCommand.vlanCount else { return error }
            filter.set(vlan: vlan, vlanCommand == .add)
            return ok
        case .announce:
            guard negotiated.contains(.guestAnnounce), command == ControlCommand.announceAck, announcing else {
                return error
            }
            announcing = false
            configGeneration &+= 1
            return ok
        case .multiqueue:
            guard negotiated.contains(.multiqueue), command == ControlCommand.queuePairsSet, data.count == 2 else {
                return error
            }
            let count = Int(data.load(littleEndian: UInt16.self, at: 0) ?? 0)
            guard count >= 1, count <= maximumQueuePairs, count <= ControlCommand.maximumQueuePairs else {
                return error
            }
            activeQueuePairs = count
            return ok
        case .guestOffloads:
            guard negotiated.contains(.controlGuestOffloads), command == ControlCommand.guestOffloadsSet,
                data.count == 8
            else { return error }
            let requested = VirtioFeatures(rawValue: data.load(littleEndian: UInt64.self, at: 0) ?? 0)
            let allowed = negotiated.intersection(.guestOffloads)
            guard requested.isSubset(of: allowed), requested.brokenDependency == nil else { return error }
            guestOffloads = requested
            return ok
        }
    }

    /// VIRTIO_NET_CTRL_MAC_TABLE_SET: {le32 entries; mac[entries]} for unicast, then the same for multicast. The
    /// counts are checked against the bytes actually there (no overflow); more than the table holds sets overflow.
    private func setMACTables(_ data: [UInt8]) -> Bool {
        var offset = 0
        func table() -> (addresses: [MACAddress], overflow: Bool)? {
            guard let declared = data.load(littleEndian: UInt32.self, at: offset).map(UInt64.init) else { return nil }
            offset += 4
            let available = UInt64(data.count - offset) / 6
            guard declared <= available else { return nil }
            let count = Int(declared)
            var addresses: [MACAddress] = []
            for i in 0..<min(count, ReceiveFilter.tableCapacity) {
                if let mac = MACAddress(bytes: data[(offset + 6 * i)..<(offset + 6 * i + 6)]) { addresses.append(mac) }
            }
            offset += 6 * count
            return (addresses, count > ReceiveFilter.tableCapacity)
        }
        guard let unicast = table(), let multicast = table() else { return false }
        filter.unicast = unicast.addresses
        filter.unicastOverflow = unicast.overflow
        filter.multicast = multicast.addresses
        filter.multicastOverflow = multicast.overflow
        return true
    }
}
