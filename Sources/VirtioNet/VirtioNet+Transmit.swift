import NICCore

extension VirtioQueuePair {
    /// One transmit pass: at most one queue size of chains, each gathered once, checked, finished if the attachment
    /// cannot take offload metadata, and sent; used entries are published in one batch.
    func transmitPass() {
        guard !busy else {
            // Re-entered (a frame looped back into service() while this pair is mid-pass): run after it.
            transmitPending = true
            rerun = true
            return
        }
        exclusively { transmitPassBody() }
    }

    private func transmitPassBody() {
        guard let card, card.isRunning, transmitQueue.isReady else { return }
        transmitPending = false
        let queue = transmitQueue
        let chain = transmitChain
        do throws(VirtqueueError) {
            // Passes of at most a queue size each; after publishing avail_event the ring is checked again, so a
            // chain the driver added meanwhile (without ringing) is not left behind.
            for _ in 0..<Self.transmitRounds {
                var budget = Int(queue.size)
                while budget > 0 {
                    guard try queue.pop(into: chain) else { break }
                    budget -= 1
                    statistics[.transmitChains] &+= 1
                    try transmit(chain, card: card)
                    try queue.push(chain, length: 0)
                }
                signal(queue, wanted: try queue.flush(), card: card)
                try queue.requestNotifications()
                guard try queue.hasAvailable() else { return }
            }
            transmitPending = true
            statistics[.transmitBudgetExhausted] &+= 1
        } catch {
            card.fail(error)
        }
    }

    private func transmit(_ chain: DescriptorChain, card: VirtioNetCard) throws(VirtqueueError) {
        let headerLength = card.headerLength
        let total = chain.readableBytes
        guard total >= headerLength else {
            statistics[.transmitDroppedShortHeader] &+= 1
            return
        }
        guard total >= headerLength + 14 else {
            statistics[.transmitDroppedRunt] &+= 1
            return
        }
        guard total <= transmitBuffer.count else {
            statistics[.transmitDroppedOversize] &+= 1
            return
        }
        guard card.linkUp else {
            statistics[.transmitDroppedLinkDown] &+= 1
            return
        }
        let copied = try chain.gather(
            from: card.dma, into: UnsafeMutableRawBufferPointer(rebasing: transmitBuffer[0..<total]))
        guard let header = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: transmitBuffer[0..<headerLength])) else {
            statistics[.transmitDroppedShortHeader] &+= 1
            return
        }
        let frame = UnsafeRawBufferPointer(rebasing: transmitBuffer[headerLength..<copied])
        guard let metadata = metadata(for: header, frameLength: frame.count, features: card.negotiated) else { return }
        let port = card.port
        if metadata.isFinished || port.attachment?.acceptsOffloadMetadata == true {
            if !metadata.isFinished { statistics[.transmitOffloadPassed] &+= 1 }
            port.transmit(frame, metadata: metadata)
            statistics[.transmittedFrames] &+= 1
            statistics[.transmittedBytes] &+= UInt64(frame.count)
            return
        }
        do {
            var frames: UInt64 = 0
            var bytes: UInt64 = 0
            try finisher.finish(frame, metadata: metadata) { finished in
                port.transmit(finished, metadata: .none)
                frames &+= 1
                bytes &+= UInt64(finished.count)
            }
            statistics[.transmitSoftwareFinished] &+= 1
            statistics[.transmittedFrames] &+= frames
            statistics[.transmittedBytes] &+= bytes
        } catch {
            statistics[.transmitDroppedUnfinishable] &+= 1
        }
    }

    /// The offload work a transmit header asks for, or `nil` (counted) if the request is invalid or was not
    /// negotiated.
    private func metadata(for header: VirtioNetHeader, frameLength: Int, features: VirtioFeatures) -> FrameMetadata? {
        var metadata = FrameMetadata()
        if header.flags & VirtioNetHeader.needsChecksum != 0 {
            let start = Int(header.checksumStart)
            let offset = Int(header.checksumOffset)
            guard start + offset + 2 <= frameLength else {
                statistics[.transmitDroppedBadChecksum] &+= 1
                return nil
            }
            metadata.checksum = ChecksumRequest(start: start, offset: offset)
        }
        let type = header.gsoType & ~VirtioNetHeader.gsoECN
        guard type != VirtioNetHeader.gsoNone else { return metadata }
        let ecn = header.gsoType & VirtioNetHeader.gsoECN != 0
        guard let kind = VirtioNetHeader.segmentationKind(ofGSOType: type, form: .ufo) else {
            statistics[.transmitDroppedBadGSO] &+= 1
            return nil
        }
        let needed: VirtioFeatures
        switch kind {
        case .tcpIPv4: needed = .hostTSO4
        case .tcpIPv6: needed = .hostTSO6
        case .udp: needed = .hostUFO
        }
        guard features.contains(needed), !ecn || features.contains(.hostECN), header.gsoSize > 0,
            Int(header.headerLength) <= frameLength
        else {
            statistics[.transmitDroppedBadGSO] &+= 1
            return nil
        }
        metadata.segmentation = SegmentationRequest(
            kind: kind, segmentSize: Int(header.gsoSize), headerLength: Int(header.headerLength), ecn: ecn)
        return metadata
    }
}
