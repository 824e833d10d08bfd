import NICCore

/// The frame being assembled from a chain of transmit descriptors (STP ... ENP).
private struct TransmitFrame {
    var length = 0
    var appendFCS = true
    var oversize = false
    var carrierLost = false
}

extension PCNetCard {
    /// Whether the current transmit descriptor belongs to the chip (a DMA fault reports MERR and answers no).
    func currentTransmitDescriptorOwned() -> Bool {
        do throws(DMAError) {
            return try descriptorOwned(at: descriptorAddress(.transmit, txIndex))
        } catch {
            memoryError()
            return false
        }
    }

    /// One transmit pass (after TDMD or a poll): sends every frame the guest handed over, walking at most one ring
    /// length of descriptors. A chain that breaks before ENP is an underflow (BUFF, UFLO, ERR; TXON drops unless
    /// DXSUFLO). Never re-entered: loopback frames queue and reach the receiver after the pass.
    func transmitPass() {
        let started = csr[0] & (CSR0.start.mask | CSR0.stop.mask) == CSR0.start.mask
        guard started, csr[0] & CSR0.transmitOn.mask != 0 else {
            // Without TXON a demand is dropped.
            csr[0] &= ~CSR0.transmitDemand.mask
            return
        }
        // While suspended a demand stays pending; leaving suspend serves it.
        guard csr[5] & CSR5.suspend.mask == 0 else { return }
        csr[0] &= ~CSR0.transmitDemand.mask
        guard !transmitting else { return }
        transmitting = true
        defer { transmitting = false }

        var frame: TransmitFrame?
        // The previous descriptor of an unfinished chain, held back so an underflow can be reported in it.
        var held: (descriptor: Descriptor, address: GuestAddress)?
        var budget = transmitRingLength
        do throws(DMAError) {
            while budget > 0 {
                let address = descriptorAddress(.transmit, txIndex)
                guard try descriptorOwned(at: address) else { break }
                var descriptor = try readDescriptor(at: address, ring: .transmit)
                let startsFrame = descriptor.status & DescriptorStatus.startOfPacket.mask != 0
                if startsFrame, let previous = held {
                    // A new frame started before the last one ended: the old chain is abandoned as an underflow,
                    // which turns the transmitter off unless DXSUFLO. Then the new frame waits, still owned.
                    try finishBrokenChain(previous.descriptor, at: previous.address)
                    held = nil
                    frame = nil
                    statistics[.transmitChainErrors] &+= 1
                    guard csr[0] & CSR0.transmitOn.mask != 0 else { break }
                }
                budget -= 1
                txIndex = (txIndex + 1) % transmitRingLength

                var current: TransmitFrame
                if startsFrame {
                    current = TransmitFrame(
                        appendFCS: csr[15] & CSR15.disableTransmitFCS.mask == 0
                            || (softwareStyle != 1 && descriptor.status & TransmitDescriptorStatus.addFCS.mask != 0))
                } else if let ongoing = frame {
                    current = ongoing
                } else {
                    // A descriptor outside any frame: hand it back untouched.
                    descriptor.status &= ~DescriptorStatus.own.mask
                    try writeBack(descriptor, at: address, ring: .transmit)
                    statistics[.transmitChainErrors] &+= 1
                    continue
                }
                if let previous = held {
                    try writeBack(previous.descriptor, at: previous.address, ring: .transmit)
                    held = nil
                }
                try append(descriptor, to: &current)
                frame = current
                descriptor.status &= ~DescriptorStatus.own.mask
                guard descriptor.status & DescriptorStatus.endOfPacket.mask != 0 else {
                    held = (descriptor, address)
                    continue
                }
                try finish(current, descriptor: &descriptor)
                try writeBack(descriptor, at: address, ring: .transmit)
                frame = nil
            }
            if let previous = held {
                // The chain ran into a descriptor the chip does not own (or past the ring): underflow.
                try finishBrokenChain(previous.descriptor, at: previous.address)
            }
        } catch {
            memoryError()
        }
        drainLoopback()
        updateInterrupts()
    }

    /// Copies the descriptor's buffer into the frame, unless the frame already outgrew the largest legal frame.
    private func append(_ descriptor: Descriptor, to frame: inout TransmitFrame) throws(DMAError) {
        let length = descriptor.bufferLength
        defer { frame.length += length }
        guard !frame.oversize, frame.length + length <= transmitBuffer.count else {
            frame.oversize = true
            return
        }
        let source = physicalAddress(descriptor.buffer)
        try dma.read(at: source, into: &transmitBuffer, range: frame.length..<frame.length + length)
    }

    /// Completes a frame at its ENP descriptor: checks carrier and size, sends it (or loops it back) and sets the
    /// descriptor's status and the interrupt flags.
    private func finish(_ frame: TransmitFrame, descriptor: inout Descriptor) throws(DMAError) {
        let loopback = csr[15] & CSR15.loopback.mask != 0
        let internalLoopback = loopback && csr[15] & CSR15.internalLoopback.mask != 0
        // The frame as a port carries it: without an FCS the guest supplied itself.
        let portLength = frame.appendFCS ? frame.length : frame.length - 4
        if !linkUp && !internalLoopback {
            descriptor.misc |= TransmitErrors.lossOfCarrier.mask
            descriptor.status |= DescriptorStatus.error.mask
            statistics[.transmitDroppedLinkDown] &+= 1
        } else if frame.oversize || portLength > FrameLimits.maximum {
            raise(.babble)
            statistics[.transmitDroppedOversize] &+= 1
        } else if portLength < FrameLimits.header {
            statistics[.transmitDroppedRunt] &+= 1
        } else {
            var length = frame.length
            if frame.appendFCS, csr[4] & CSR4.autoPadTransmit.mask != 0, length < FrameLimits.minimum {
                transmitBuffer.withUnsafeMutableBytes { buffer in
                    for i in length..<FrameLimits.minimum { buffer[i] = 0 }
                }
                length = FrameLimits.minimum
            }
            let sendLength = frame.appendFCS ? length : length - 4
            if !internalLoopback {
                transmitBuffer.withUnsafeBytes { port.transmit(UnsafeRawBufferPointer(rebasing: $0[0..<sendLength])) }
            }
            if loopback { queueLoopback(length: length, fcsIncluded: !frame.appendFCS) }
            statistics[.transmittedFrames] &+= 1
            statistics[.transmittedBytes] &+= UInt64(sendLength)
            csr[4] |= CSR4.transmitStart.mask
        }
        let failed = descriptor.status & DescriptorStatus.error.mask != 0
        if failed || csr[5] & CSR5.transmitOKInterruptDisable.mask == 0
            || (csr[5] & CSR5.lastTransmitInterruptEnable.mask != 0
                && descriptor.status & TransmitDescriptorStatus.lastTransmitInterrupt.mask != 0)
        {
            raise(.transmitInterrupt)
        }
    }

    /// Reports an underflow in the last descriptor of a chain that never reached ENP.
    private func finishBrokenChain(_ descriptor: Descriptor, at address: GuestAddress) throws(DMAError) {
        var descriptor = descriptor
        descriptor.misc |= TransmitErrors.bufferError.mask | TransmitErrors.underflow.mask
        descriptor.status |= DescriptorStatus.error.mask
        try writeBack(descriptor, at: address, ring: .transmit)
        statistics[.transmitUnderflows] &+= 1
        raise(.transmitInterrupt)
        if csr[3] & CSR3.disableTransmitStopOnUnderflow.mask == 0 { csr[0] &= ~CSR0.transmitOn.mask }
    }

    /// Queues the first `length` bytes of the transmit buffer for the receiver, with the FCS the wire would carry.
    private func queueLoopback(length: Int, fcsIncluded: Bool) {
        guard loopbackQueue.count < 16 else {
            statistics[.loopbackDropped] &+= 1
            return
        }
        let bytes = Array(transmitBuffer[0..<(fcsIncluded ? length - 4 : length)])
        let fcs: UInt32
        if fcsIncluded {
            fcs = (0..<4).reduce(UInt32(0)) { $0 | UInt32(transmitBuffer[length - 4 + $1]) << (8 * UInt32($1)) }
        } else {
            fcs = EthernetCRC.checksum(bytes)
        }
        loopbackQueue.append(LoopbackFrame(bytes: bytes, fcs: fcs))
    }

    /// Feeds looped-back frames to the receiver, after the transmit pass that produced them.
    func drainLoopback() {
        var budget = 16
        while budget > 0, !loopbackQueue.isEmpty {
            budget -= 1
            let frame = loopbackQueue.removeFirst()
            statistics[.loopbackFrames] &+= 1
            frame.bytes.withUnsafeBytes { receive($0, loopbackFCS: frame.fcs) }
        }
    }
}
