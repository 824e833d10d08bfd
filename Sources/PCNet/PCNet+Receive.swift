import NICCore

/// Which address filter accepted a frame (all false in promiscuous mode).
struct AddressMatch {
    var physical = false
    var logical = false
    var broadcast = false
}

extension PCNetCard {
    /// The station address filter from CSR12-14.
    var physicalAddress: MACAddress {
        MACAddress(
            rawValue: (0..<3).reduce(UInt64(0)) { value, i in
                let word = csr[12 + i]
                return value << 16 | UInt64(word & 0xFF) << 8 | UInt64(word >> 8)
            })
    }

    /// The 64-bit logical address filter from CSR8-11.
    var logicalAddressFilter: UInt64 {
        (0..<4).reduce(UInt64(0)) { $0 | UInt64(csr[8 + $1]) << (16 * UInt64($1)) }
    }

    /// Decides whether the chip accepts a frame for `destination`, and through which filter.
    func addressMatch(_ destination: MACAddress) -> AddressMatch? {
        let mode = csr[15]
        if mode & CSR15.promiscuous.mask != 0 { return AddressMatch() }
        if destination.isBroadcast {
            return mode & CSR15.disableReceiveBroadcast.mask == 0 ? AddressMatch(broadcast: true) : nil
        }
        if destination.isMulticast {
            // The top six bits of the CRC register over the address select one of 64 filter bits.
            let register = destination.bytes.withUnsafeBytes { EthernetCRC.update(0xFFFF_FFFF, $0) }
            let bit = register >> 26
            return logicalAddressFilter & (1 << UInt64(bit)) != 0 ? AddressMatch(logical: true) : nil
        }
        if mode & CSR15.disableReceivePhysical.mask == 0, destination == physicalAddress {
            return AddressMatch(physical: true)
        }
        return nil
    }

    /// Receives one frame (destination address to payload end, no FCS). `loopbackFCS` is set for frames the
    /// transmitter looped back: their FCS is checked instead of generated.
    ///
    /// The frame, padded to 60 bytes and followed by its FCS, goes into as many receive descriptors as it needs,
    /// starting at the current one (STP) and ending with ENP and the message length. No descriptor owned at the start
    /// is a missed frame (MISS, CSR112); running out in the middle is a buffer error (BUFF, OFLO).
    func receive(_ frame: UnsafeRawBufferPointer, loopbackFCS: UInt32?) {
        guard isRunning, csr[0] & CSR0.receiveOn.mask != 0 else {
            statistics[.receiveDroppedStopped] &+= 1
            return
        }
        if loopbackFCS == nil, !linkUp {
            // Nothing arrives over an unplugged cable, whatever the attachment still delivers.
            statistics[.receiveDroppedLinkDown] &+= 1
            return
        }
        if csr[15] & CSR15.loopback.mask != 0, loopbackFCS == nil {
            statistics[.receiveDroppedLoopbackMode] &+= 1
            return
        }
        guard frame.count <= FrameLimits.maximum else {
            statistics[.receiveDroppedOversize] &+= 1
            return
        }
        guard let destination = MACAddress(in: frame, at: 0), frame.count >= FrameLimits.header else {
            statistics[.receiveDroppedRunt] &+= 1
            return
        }
        guard let match = addressMatch(destination) else {
            statistics[.receiveFiltered] &+= 1
            return
        }

        let length = loopbackFCS == nil ? max(frame.count, FrameLimits.minimum) : frame.count
        var crcError = false
        receiveBuffer.withUnsafeMutableBytes { buffer in
            buffer.copyMemory(from: frame)
            for i in frame.count..<length { buffer[i] = 0 }
            let computed = EthernetCRC.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
            let fcs = loopbackFCS ?? computed
            crcError = fcs != computed
            for i in 0..<4 { buffer[length + i] = UInt8(truncatingIfNeeded: fcs >> (8 * UInt32(i))) }
        }
        do throws(DMAError) {
            try store(total: length + 4, match: match, crcError: crcError)
        } catch {
            memoryError()
        }
        updateInterrupts()
    }

    /// Writes the first `total` bytes of the receive buffer into the receive ring.
    private func store(total: Int, match: AddressMatch, crcError: Bool) throws(DMAError) {
        let ringLength = receiveRingLength
        var address = descriptorAddress(.receive, rxIndex)
        guard try descriptorOwned(at: address) else {
            raise(.missedFrame)
            statistics[.receiveMissed] &+= 1
            csr[112] &+= 1
            if csr[112] == 0 { csr[4] |= CSR4.missedFrameCounterOverflow.mask }
            return
        }
        var descriptor = try readDescriptor(at: address, ring: .receive)
        descriptor.status |= DescriptorStatus.startOfPacket.mask
        var written = 0
        var used = 0
        while true {
            let chunk = min(descriptor.bufferLength, total - written)
            let destination = physicalAddress(descriptor.buffer)
            try dma.write(at: destination, from: receiveBuffer, range: written..<written + chunk)
            written += chunk
            used += 1
            rxIndex = (rxIndex + 1) % ringLength
            descriptor.status &= ~DescriptorStatus.own.mask
            if written == total {
                descriptor.status |= DescriptorStatus.endOfPacket.mask
                if match.physical { descriptor.status |= DescriptorStatus.physicalAddressMatch.mask }
                if match.logical { descriptor.status |= DescriptorStatus.logicalAddressMatch.mask }
                if match.broadcast { descriptor.status |= DescriptorStatus.broadcastAddressMatch.mask }
                if crcError {
                    descriptor.status |= DescriptorStatus.crcError.mask | DescriptorStatus.error.mask
                    statistics[.receiveCRCErrors] &+= 1
                }
                descriptor.misc = (descriptor.misc & ~0xFFFF) | UInt32(total)
                if !softwareSize32 { descriptor.status &= 0xFF00 }
                try writeBack(descriptor, at: address, ring: .receive)
                statistics[.receivedFrames] &+= 1
                statistics[.receivedBytes] &+= UInt64(total)
                break
            }
            let next = descriptorAddress(.receive, rxIndex)
            guard used < ringLength, try descriptorOwned(at: next) else {
                // Out of buffers in mid-frame: the rest is lost.
                descriptor.status |=
                    DescriptorStatus.bufferError.mask | DescriptorStatus.overflow.mask | DescriptorStatus.error.mask
                try writeBack(descriptor, at: address, ring: .receive)
                statistics[.receiveBufferErrors] &+= 1
                break
            }
            try writeBack(descriptor, at: address, ring: .receive)
            address = next
            descriptor = try readDescriptor(at: address, ring: .receive)
        }
        raise(.receiveInterrupt)
    }
}
