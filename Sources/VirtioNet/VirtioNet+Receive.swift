import NICCore

extension VirtioNetCard {
    /// Filters a frame from the port and hands it to the pair its flow hashes to, or drops it (counted).
    func steerAndAccept(_ frame: InboundFrame) {
        guard let index = steer(frame) else { return }
        pairs[index].accept(frame, card: self)
    }

    /// Filters a frame from the port and picks the index of the pair its flow hashes to; `nil` (counted) if it is
    /// dropped.
    func steer(_ frame: InboundFrame) -> Int? {
        guard linkUp else {
            statistics[.receiveDroppedLinkDown] &+= 1
            return nil
        }
        guard isRunning else {
            statistics[.receiveDroppedNotReady] &+= 1
            return nil
        }
        if !filter.promiscuous {
            let accepted = frame.bytes.withUnsafeBytes { filter.accepts($0, mac: currentMAC) }
            guard accepted else {
                statistics[.receiveFiltered] &+= 1
                return nil
            }
        }
        let pairCount = max(1, min(activeQueuePairs, pairs.count))
        guard pairCount > 1 else { return 0 }
        return frame.bytes.withUnsafeBytes { FlowHash.of($0) } % pairCount
    }
}

/// The receive-steering hash: the IP addresses and TCP/UDP ports of a frame (FNV-1a), or its MAC addresses and
/// EtherType for anything else, so one flow always lands on one pair. FNV-1a's low bits depend only on the low bits of
/// the bytes (Linux gives connect() even ports, so every flow had the same parity and one pair took them all): the
/// result goes through MurmurHash3's finaliser, whose every output bit depends on every input bit.
enum FlowHash {
    static func finalised(_ value: UInt32) -> Int {
        var hash = value
        hash ^= hash >> 16
        hash = hash &* 0x85EB_CA6B
        hash ^= hash >> 13
        hash = hash &* 0xC2B2_AE35
        hash ^= hash >> 16
        return Int(hash & 0x7FFF_FFFF)
    }

    static func of(_ frame: UnsafeRawBufferPointer) -> Int {
        var hash: UInt32 = 2_166_136_261
        func mix(_ range: Range<Int>) {
            for i in range where i < frame.count {
                hash = (hash ^ UInt32(frame[i])) &* 16_777_619
            }
        }
        guard let ethernet = EthernetHeader(frame, lookingThroughVLAN: false) else {
            mix(0..<frame.count)
            return finalised(hash)
        }
        // The addresses and ports, at their places in an untagged frame (no version or length checks: any bytes
        // there hash).
        let network = EthernetHeader.size
        switch ethernet.etherType {
        case EtherType.ipv4 where frame.count >= network + IPv4Header.minimumSize:
            let ihl = Int(frame[network] & 0x0F) * 4
            mix((network + 12)..<(network + 20))
            let proto = frame[network + 9]
            if proto == IPProtocolNumber.tcp || proto == IPProtocolNumber.udp, ihl >= IPv4Header.minimumSize {
                mix((network + ihl)..<(network + ihl + 4))
            }
        case EtherType.ipv6 where frame.count >= network + IPv6Header.size:
            mix((network + 8)..<(network + 40))
            let next = frame[network + 6]
            if next == IPProtocolNumber.tcp || next == IPProtocolNumber.udp {
                mix((network + 40)..<(network + 44))
            }
        default:
            mix(0..<network)
        }
        return finalised(hash)
    }
}

/// What became of one frame offered to the receive ring.
enum ReceiveOutcome {
    case delivered
    /// No (or not enough) buffers now: the frame waits.
    case noBuffers
    /// Dropped and counted.
    case dropped
}

extension VirtioQueuePair {
    /// Whether frames wait in the backlog or a stalled frame waits for buffers.
    var hasWaitingFrames: Bool { stalled != nil || backlogUsed }

    /// Takes a frame steered to this pair (configuration thread): into the ring now if nothing waits ahead of it,
    /// else behind the waiting ones. Used entries are published by ``closeReceiveBatch()``.
    func accept(_ frame: InboundFrame, card: VirtioNetCard) {
        guard receiveQueue.isReady else {
            statistics[.receiveDroppedNotReady] &+= 1
            return
        }
        if hasWaitingFrames || busy {
            rerun = busy
            if backlog.deliver(frame.bytes, metadata: frame.metadata) {
                backlogUsed = true
            } else {
                statistics[.receiveDroppedBacklogFull] &+= 1
            }
            return
        }
        do throws(VirtqueueError) {
            receiveBatchOpen = true
            if try receive(frame, card: card) == .noBuffers {
                stalled = frame
                statistics[.receiveStalls] &+= 1
            }
        } catch {
            card.fail(error)
        }
    }

    /// Publishes what ``accept(_:card:)`` placed: one used-index update and at most one interrupt per batch.
    func closeReceiveBatch() {
        guard receiveBatchOpen, !busy else { return }
        receiveBatchOpen = false
        guard let card, card.isRunning else { return }
        do throws(VirtqueueError) {
            signal(receiveQueue, wanted: try receiveQueue.flush(), card: card)
            try receiveQueue.requestNotifications()
            // Buffers that arrived while avail_event was being published would otherwise wait for a doorbell.
            if stalled != nil, try receiveQueue.hasAvailable() { receivePending() }
        } catch {
            card.fail(error)
        }
    }

    /// Moves waiting frames into receive buffers until either runs out; publishes the used entries in one batch.
    func receivePending() {
        guard !busy else {
            rerun = true
            return
        }
        exclusively { receivePendingBody() }
    }

    private func receivePendingBody() {
        guard let card, card.isRunning, receiveQueue.isReady else { return }
        let queue = receiveQueue
        do throws(VirtqueueError) {
            // A stalled frame retries once more after avail_event is published, in case buffers arrived meanwhile.
            for _ in 0..<2 {
                while true {
                    guard let frame = stalled ?? backlog.nextInbound() else {
                        backlogUsed = false
                        break
                    }
                    stalled = nil
                    if try receive(frame, card: card) == .noBuffers {
                        stalled = frame
                        statistics[.receiveStalls] &+= 1
                        break
                    }
                }
                signal(queue, wanted: try queue.flush(), card: card)
                try queue.requestNotifications()
                guard stalled != nil, try queue.hasAvailable() else { return }
            }
        } catch {
            card.fail(error)
        }
    }

    /// Offers one frame: passes offloads the guest accepts in the header, finishes the rest in software.
    private func receive(_ frame: InboundFrame, card: VirtioNetCard) throws(VirtqueueError) -> ReceiveOutcome {
        let metadata = frame.metadata
        let offloads = card.guestOffloads
        var header = VirtioNetHeader()
        var finish = metadata.vlanTag != nil
        if let segmentation = metadata.segmentation {
            let type = VirtioNetHeader.gsoType(for: segmentation.kind, form: .ufo)
            let needed: VirtioFeatures
            switch segmentation.kind {
            case .tcpIPv4: needed = .guestTSO4
            case .tcpIPv6: needed = .guestTSO6
            case .udp: needed = .guestUFO
            }
            if offloads.contains(needed), !segmentation.ecn || offloads.contains(.guestECN), metadata.checksum != nil,
                segmentation.segmentSize > 0, segmentation.segmentSize <= 0xFFFF, segmentation.headerLength <= 0xFFFF
            {
                header.gsoType = type | (segmentation.ecn ? VirtioNetHeader.gsoECN : 0)
                header.gsoSize = UInt16(segmentation.segmentSize)
                header.headerLength = UInt16(segmentation.headerLength)
            } else {
                finish = true
            }
        }
        if !finish, let checksum = metadata.checksum {
            if offloads.contains(.guestChecksum), checksum.start >= 0, checksum.start <= 0xFFFF, checksum.offset >= 0,
                checksum.offset <= 0xFFFF
            {
                header.flags = VirtioNetHeader.needsChecksum
                header.checksumStart = UInt16(checksum.start)
                header.checksumOffset = UInt16(checksum.offset)
            } else {
                finish = true
            }
        }
        guard finish else {
            if header.flags == 0, metadata.checksumValid, offloads.contains(.guestChecksum) {
                header.flags = VirtioNetHeader.dataValid
            }
            if header.gsoType != 0 { statistics[.receiveGSOToGuest] &+= 1 }
            if header.flags == VirtioNetHeader.needsChecksum { statistics[.receivePartialChecksumToGuest] &+= 1 }
            return try frame.bytes.withBytes { (bytes) throws(VirtqueueError) in
                try place(bytes, header: header, card: card)
            }
        }
        // Software: every resulting frame goes in on its own; only the first may wait for buffers.
        guard try receiveQueue.hasAvailable() else { return .noBuffers }
        var plain = VirtioNetHeader()
        // DATA_VALID only where the checksum is known good: computed here, or verified by the sender.
        let checksummed = metadata.checksum != nil || metadata.segmentation != nil || metadata.checksumValid
        if offloads.contains(.guestChecksum), checksummed { plain.flags = VirtioNetHeader.dataValid }
        var failure: VirtqueueError?
        var outcome = ReceiveOutcome.delivered
        var first = true
        do {
            _ = try frame.bytes.withBytes { (bytes) throws(FrameFinisherError) in
                try finisher.finish(bytes, metadata: metadata) { finished in
                    guard failure == nil else { return }
                    do throws(VirtqueueError) {
                        let result = try place(finished, header: plain, card: card)
                        if first, result == .noBuffers { outcome = .noBuffers }
                        if !first, result == .noBuffers { statistics[.receiveDroppedNoBuffers] &+= 1 }
                    } catch { failure = error }
                    first = false
                }
            }
            statistics[.receiveSoftwareFinished] &+= 1
        } catch {
            statistics[.receiveDroppedUnfinishable] &+= 1
            return .dropped
        }
        if let failure { throw failure }
        return outcome
    }

    /// The chain object for the `index`th chain of a frame (the first is a fixed object; more are grown on demand).
    @inline(__always)
    private func receiveChain(_ index: Int) -> DescriptorChain {
        if index == 0 { return firstReceiveChain }
        while extraReceiveChains.count < index { extraReceiveChains.append(DescriptorChain()) }
        return extraReceiveChains[index - 1]
    }

    /// Pops the next receive chain into `chain`; `false` when the driver has none. A chain with nothing the device
    /// may write breaks the protocol (counted; the caller's error puts the device in NEEDS_RESET).
    @inline(__always)
    private func popWritable(into chain: DescriptorChain, card: VirtioNetCard) throws(VirtqueueError) -> Bool {
        guard try receiveQueue.pop(into: chain) else { return false }
        guard chain.writableBytes > 0 else {
            card.statistics[.receiveChainNotWritable] &+= 1
            throw .readableAfterWritable
        }
        return true
    }

    /// Writes the header and `frame` into one chain, or with mergeable buffers into as many as it takes.
    private func place(_ frame: UnsafeRawBufferPointer, header: VirtioNetHeader, card: VirtioNetCard)
        throws(VirtqueueError) -> ReceiveOutcome
    {
        guard frame.count >= 14 else {
            statistics[.receiveDroppedRunt] &+= 1
            return .dropped
        }
        let queue = receiveQueue
        let headerLength = card.headerLength
        let total = headerLength + frame.count
        let mark = queue.mark
        let first = firstReceiveChain
        guard try popWritable(into: first, card: card) else {
            queue.rewind(to: mark)
            return .noBuffers
        }
        var chains = 1
        if first.writableBytes < total {
            // Without mergeable buffers a frame gets one chain; with them, at most a ring's worth.
            guard card.negotiated.contains(.mergeableReceiveBuffers), queue.size > 1 else {
                queue.rewind(to: mark)
                statistics[.receiveDroppedTooLarge] &+= 1
                return .dropped
            }
            var capacity = first.writableBytes
            while capacity < total {
                let chain = receiveChain(chains)
                guard try popWritable(into: chain, card: card) else {
                    queue.rewind(to: mark)
                    return .noBuffers
                }
                chains += 1
                capacity += chain.writableBytes
                if capacity < total, chains >= Int(queue.size) {
                    queue.rewind(to: mark)
                    statistics[.receiveDroppedTooLarge] &+= 1
                    return .dropped
                }
            }
        }
        guard first.writableBytes >= headerLength else {
            queue.rewind(to: mark)
            statistics[.receiveDroppedTooLarge] &+= 1
            return .dropped
        }
        var header = header
        header.bufferCount = UInt16(chains)
        // The header (with num_buffers) and the start of the frame go into the first chain with one DMA where its
        // first buffer is large enough, then the rest of the data chain by chain.
        var raw: (UInt64, UInt64) = (0, 0)
        var offset = try withUnsafeMutableBytes(of: &raw) { (bytes) throws(VirtqueueError) -> Int in
            header.store(into: bytes, length: headerLength)
            let part = min(first.writableBytes - headerLength, frame.count)
            return try first.scatter(
                header: UnsafeRawBufferPointer(rebasing: bytes[0..<headerLength]),
                frame: UnsafeRawBufferPointer(rebasing: frame[0..<part]), to: card.dma)
        }
        try queue.push(first, length: headerLength + offset)
        var index = 1
        while index < chains {
            let chain = receiveChain(index)
            index += 1
            let length = min(chain.writableBytes, frame.count - offset)
            let written = try chain.scatter(
                UnsafeRawBufferPointer(rebasing: frame[offset..<offset + length]), to: card.dma, at: 0)
            offset += written
            try queue.push(chain, length: written)
        }
        statistics[.receivedFrames] &+= 1
        statistics[.receivedBytes] &+= UInt64(frame.count)
        if chains > 1 { statistics[.receiveMergedBuffers] &+= UInt64(chains - 1) }
        return .delivered
    }
}
