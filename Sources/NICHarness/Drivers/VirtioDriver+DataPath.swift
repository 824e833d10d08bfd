import NICCore
import VirtioNet

extension VirtioNetHeader {
    /// A transmit header asking for TCP segmentation of an Ethernet/IPv4/TCP frame at `mss`, as Linux's
    /// virtio_net_hdr_from_skb fills it.
    public static func tcp4(mss: UInt16, frame: [UInt8]) -> VirtioNetHeader {
        let transport = 14 + Int(frame.count > 14 ? frame[14] & 0x0F : 5) * 4
        let tcpLength = frame.count > transport + 12 ? Int(frame[transport + 12] >> 4) * 4 : 20
        return VirtioNetHeader(
            flags: needsChecksum, gsoType: gsoTCPv4, headerLength: UInt16(transport + tcpLength), gsoSize: mss,
            checksumStart: UInt16(transport), checksumOffset: 16)
    }

    /// A transmit header asking for a checksum from `start`, stored at `start + offset` (NEEDS_CSUM).
    public static func checksum(start: UInt16, offset: UInt16) -> VirtioNetHeader {
        VirtioNetHeader(flags: needsChecksum, checksumStart: start, checksumOffset: offset)
    }
}

extension VirtioDriver {
    // MARK: Transmit

    /// Free transmit descriptors.
    public var transmitSpace: Int { transmitQueue?.freeDescriptors ?? 0 }

    /// virtnet's start_xmit: reclaim finished buffers, then the header and the frame (one descriptor on the modern
    /// interface; a separate header descriptor on the legacy one, which has no ANY_LAYOUT) and a kick unless the
    /// device said not to. Returns `false` when the ring is full.
    @discardableResult
    public func transmit(_ frame: [UInt8], offload: VirtioNetHeader? = nil) throws(HarnessError) -> Bool {
        guard let queue = transmitQueue else { throw HarnessError("virtio: not open") }
        try reapTransmit()
        guard frame.count + 64 <= Int(Layout.transmitStride) else {
            throw HarnessError("virtio: a \(frame.count)-byte frame does not fit a transmit buffer")
        }
        guard let buffer = freeTransmitBuffers.last else { return false }
        let header = transmitHeader(offload)
        let buffers: [VirtioDriverQueue.Buffer]
        if modern != nil {
            try harness.store(header + frame, at: buffer, comment: "virtio_net_hdr and frame")
            buffers = [.init(address: buffer, length: UInt32(header.count + frame.count), isWritable: false)]
        } else {
            try harness.store(header, at: buffer, comment: "virtio_net_hdr")
            try harness.store(frame, at: buffer + 64)
            buffers = [
                .init(address: buffer, length: UInt32(header.count), isWritable: false),
                .init(address: buffer + 64, length: UInt32(frame.count), isWritable: false),
            ]
        }
        guard let token = try queue.add(buffers) else { return false }
        freeTransmitBuffers.removeLast()
        transmitBufferOf[token] = buffer
        if try queue.needsKick() { notify(queue) }
        return true
    }

    private func transmitHeader(_ offload: VirtioNetHeader?) -> [UInt8] {
        (offload ?? VirtioNetHeader()).bytes(length: headerLength)
    }

    /// free_old_xmit: every transmit buffer the device returned.
    func reapTransmit() throws(HarnessError) {
        guard let queue = transmitQueue else { return }
        for (token, _) in try queue.takeUsed() {
            freeTransmitBuffers.append(transmitBufferOf[token])
        }
    }

    // MARK: Receive

    /// The receive buffer size in force: mergeable or small.
    public var receiveBufferSize: Int {
        features.contains(.mergeableReceiveBuffers) ? Self.mergeableBufferSize : smallBufferSize
    }

    /// try_fill_recv: a buffer into every free receive descriptor, then a kick if the device wants one.
    public func fillReceive(limit: Int = .max) throws(HarnessError) {
        guard let queue = receiveQueue else { throw HarnessError("virtio: not open") }
        var added = 0
        while added < limit, let buffer = freeReceiveBuffers.last,
            let token = try queue.add([.init(address: buffer, length: UInt32(receiveBufferSize), isWritable: true)])
        {
            freeReceiveBuffers.removeLast()
            receiveBufferOf[token] = buffer
            added += 1
        }
        if added > 0, try queue.needsKick() { notify(queue) }
    }

    /// virtnet_receive: every used receive buffer, merged by num_buffers with mergeable buffers, then a refill.
    func reapReceive() throws(HarnessError) {
        guard let queue = receiveQueue else { return }
        let used = try queue.takeUsed()
        for (token, length) in used {
            let buffer = receiveBufferOf[token]
            freeReceiveBuffers.append(buffer)
            guard length <= receiveBufferSize else {
                receiveErrors += 1
                merging = nil
                continue
            }
            let bytes = try harness.load(at: buffer, count: length, comment: "received")
            if var partial = merging {
                partial.bytes += bytes
                partial.remaining -= 1
                merging = partial.remaining > 0 ? partial : nil
                if partial.remaining == 0 { deliver(partial.bytes) }
                continue
            }
            guard length >= headerLength + 14 else {
                receiveErrors += 1
                continue
            }
            let header = Array(bytes[0..<headerLength])
            receivedHeaders.append(header)
            let parsed = header.withUnsafeBytes { VirtioNetHeader($0) } ?? VirtioNetHeader()
            let count = features.contains(.mergeableReceiveBuffers) ? Int(parsed.bufferCount) : 1
            guard count >= 1, count <= queue.size else {
                receiveErrors += 1
                continue
            }
            let frame = Array(bytes[headerLength...])
            if count == 1 {
                deliver(frame, header: header)
            } else {
                merging = (frame, count - 1)
                pendingHeader = header
            }
        }
        if !used.isEmpty { try fillReceive() }
    }

    /// Hands a frame to the stack, finishing a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) as the stack would.
    private func deliver(_ frame: [UInt8], header: [UInt8]? = nil) {
        let header = header ?? pendingHeader
        var frame = frame
        if let parsed = header.withUnsafeBytes({ VirtioNetHeader($0) }),
            parsed.flags & VirtioNetHeader.needsChecksum != 0
        {
            let start = Int(parsed.checksumStart)
            let offset = Int(parsed.checksumOffset)
            if start + offset + 2 <= frame.count {
                var sum = InternetChecksum()
                sum.add(Array(frame[start...]))
                frame.storeBigEndian16(sum.value, at: start + offset)
            }
        }
        received.append(frame)
    }

    // MARK: Control queue

    /// Sends a control command (virtnet_send_command): class and command, the data, an acknowledgement byte the device
    /// writes; polls for the answer a bounded number of times. Returns whether the device answered OK.
    @discardableResult
    public func control(_ classID: UInt8, _ command: UInt8, _ data: [UInt8], comment: String? = nil)
        throws(HarnessError) -> Bool
    {
        guard let queue = controlQueue else { throw HarnessError("virtio: no control queue") }
        let header = Layout.control
        let payload = Layout.control + 0x10
        let ack = Layout.control + 0xFF0
        guard data.count <= 0xFE0 - 0x10 else { throw HarnessError("virtio: control data too long") }
        try harness.store([classID, command], at: header, comment: comment)
        try harness.store(data, at: payload)
        try harness.store([0xFF], at: ack)
        var buffers: [VirtioDriverQueue.Buffer] = [.init(address: header, length: 2, isWritable: false)]
        if !data.isEmpty { buffers.append(.init(address: payload, length: UInt32(data.count), isWritable: false)) }
        buffers.append(.init(address: ack, length: 1, isWritable: true))
        guard try queue.add(buffers) != nil else { throw HarnessError("virtio: the control queue is full") }
        notify(queue)
        for _ in 0..<16 {
            if !(try queue.takeUsed()).isEmpty {
                let answer = try harness.load(at: ack, count: 1, comment: "ack")[0]
                controlAcks.append(answer)
                return answer == 0
            }
            harness.card.service()
        }
        throw HarnessError("virtio: no answer to control command \(classID)/\(command)")
    }

    /// VIRTIO_NET_CTRL_RX: PROMISC and ALLMULTI on or off.
    @discardableResult
    public func setReceiveMode(promiscuous: Bool, allMulticast: Bool) throws(HarnessError) -> Bool {
        guard features.contains(.controlReceive) else { return false }
        let first = try control(0, 0, [promiscuous ? 1 : 0], comment: "VIRTIO_NET_CTRL_RX_PROMISC")
        let second = try control(0, 1, [allMulticast ? 1 : 0], comment: "VIRTIO_NET_CTRL_RX_ALLMULTI")
        return first && second
    }

    /// VIRTIO_NET_CTRL_MAC_TABLE_SET: the unicast and multicast lists, each `le32 count` then the addresses.
    @discardableResult
    public func setMACTable(unicast: [MACAddress], multicast: [MACAddress]) throws(HarnessError) -> Bool {
        guard features.contains(.controlReceive) else { return false }
        func list(_ addresses: [MACAddress]) -> [UInt8] {
            let count = UInt32(addresses.count)
            return (0..<4).map { UInt8(truncatingIfNeeded: count >> (8 * UInt32($0))) } + addresses.flatMap(\.bytes)
        }
        return try control(1, 0, list(unicast) + list(multicast), comment: "VIRTIO_NET_CTRL_MAC_TABLE_SET")
    }

    /// VIRTIO_NET_CTRL_MAC_ADDR_SET.
    @discardableResult
    public func setMACAddress(_ address: MACAddress) throws(HarnessError) -> Bool {
        try control(1, 1, address.bytes, comment: "VIRTIO_NET_CTRL_MAC_ADDR_SET")
    }

    /// VIRTIO_NET_CTRL_VLAN_ADD or _DEL.
    @discardableResult
    public func filterVLAN(_ id: UInt16, add: Bool) throws(HarnessError) -> Bool {
        try control(
            2, add ? 0 : 1, VirtioDriver.littleEndian(id),
            comment: add ? "VIRTIO_NET_CTRL_VLAN_ADD" : "VIRTIO_NET_CTRL_VLAN_DEL")
    }

    /// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET.
    @discardableResult
    public func setQueuePairs(_ pairs: UInt16) throws(HarnessError) -> Bool {
        try control(
            4, 0, VirtioDriver.littleEndian(pairs),
            comment: "VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET")
    }

    /// A control command's le16 argument.
    private static func littleEndian(_ value: UInt16) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian16(value)
        return bytes
    }
}
