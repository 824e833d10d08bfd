import NICCore

/// Receive limits of the 8254x.
enum ReceiveLimits {
    /// Frames shorter than this (without FCS) are padded, as they would have been on the wire.
    static let minimumFrame = 60
    /// Frames shorter than an Ethernet header are runts.
    static let header = 14
    /// Without RCTL.LPE (or SBP) frames longer than this, FCS included, are dropped (ROC).
    static let standardWireMaximum = 1522
    /// With RCTL.LPE the longest frame, FCS included (QEMU's `e1000x_is_oversized`; VirtualBox's RX cap).
    static let maximumWireFrame = 16384
    /// The most descriptors a frame can fill (256-byte buffers), plus room for skipped null buffers.
    static let maximumDescriptorsPerFrame = maximumWireFrame / 256 + 8
}

/// Receive descriptor status bits.
enum ReceiveStatus: UInt8, RegisterBit {
    case done = 0
    case endOfPacket, ignoreChecksum, vlanPacket
    case tcpChecksum = 5
    case ipChecksum, passedInexactFilter
}

/// Receive descriptor error bits.
enum ReceiveErrors: UInt8, RegisterBit {
    case tcpError = 5
    case ipError, receiveError
}

/// What the receiver did with a frame.
enum ReceiveOutcome {
    /// Stored or dropped: the frame is gone.
    case consumed
    /// No room in the ring (or no bus mastering): the frame waits at the head of the FIFO.
    case waiting
}

extension E1000Card {
    /// Bytes per receive buffer: BSIZE 2048/1024/512/256, or with BSEX 16384/8192/4096 (BSEX with BSIZE 0 is
    /// reserved and taken as 2048).
    var receiveBufferSize: Int {
        let rctl = regs[Reg.rctl]
        let size = Int(RCTL.bufferSize.value(in: rctl))
        if rctl & RCTL.bufferSizeExtension.mask != 0, size != 0 { return 32768 >> size }
        return 2048 >> size
    }

    /// Descriptors in the receive ring (RDLEN is a multiple of 128 bytes; 0 means no ring).
    var receiveRingCount: Int { Int(regs[Reg.rdlen] & 0x000F_FF80) / 16 }

    /// Whether the transmitter loops frames back to the receiver (RCTL.LBM, or the PHY's loopback bit).
    var loopbackMode: Bool { RCTL.loopback.value(in: regs[Reg.rctl]) != 0 || phy.loopback }

    /// The guest address of descriptor `index` of the ring at `high:low`, or `nil` if it would wrap.
    @inline(__always)
    func descriptorAddress(low: UInt32, high: UInt32, index: Int) -> GuestAddress? {
        GuestAddress(UInt64(high) << 32 | UInt64(low & ~0xF)).advanced(by: UInt64(index) &* 16)
    }

    /// Frames the port dropped because its queue (the chip's receive FIFO) was full are missed packets: MPC and RXO.
    func accountPortDrops() {
        let dropped = port.inboundDropped
        guard dropped != portDropsSeen else { return }
        let delta = dropped &- portDropsSeen
        portDropsSeen = dropped
        count(Reg.mpc, by: UInt32(clamping: delta))
        statistics[.receiveMissed] &+= delta
        raise(ICR.receiveOverrun.mask)
    }

    /// Drains the port into the receive ring until it is empty or the ring has no room (the frame at the head then
    /// waits, still owned by the card, for the next RDT write).
    func receivePending() {
        accountPortDrops()
        var budget = FramePort.defaultQueueCapacity * 4
        while budget > 0 {
            budget -= 1
            guard let frame = heldFrame ?? port.nextInbound() else { break }
            heldFrame = nil
            let outcome = frame.bytes.withUnsafeBytes { receive($0, looped: false) }
            if outcome == .waiting {
                heldFrame = frame
                break
            }
        }
    }

    /// Feeds looped-back frames to the receiver, after the transmit walk that produced them.
    func drainLoopback() {
        var budget = TransmitLimits.loopbackQueue
        while budget > 0, !loopbackQueue.isEmpty {
            budget -= 1
            let frame = loopbackQueue.removeFirst()
            statistics[.loopbackFrames] &+= 1
            _ = frame.withUnsafeBytes { receive($0, looped: true) }
        }
    }

    /// Receives one frame (destination address to payload end, no FCS) into the ring.
    func receive(_ frame: UnsafeRawBufferPointer, looped: Bool) -> ReceiveOutcome {
        let rctl = regs[Reg.rctl]
        guard rctl & RCTL.enable.mask != 0 else {
            statistics[.receiveDroppedDisabled] &+= 1
            return .consumed
        }
        if !looped {
            guard linkUp else {
                statistics[.receiveDroppedLinkDown] &+= 1
                return .consumed
            }
            guard !loopbackMode else {
                statistics[.receiveDroppedLoopbackMode] &+= 1
                return .consumed
            }
            guard config.command.contains(.busMaster) else { return .waiting }
        }
        let length = frame.count
        let padded = max(length, ReceiveLimits.minimumFrame)
        let wireLength = padded + 4
        guard length >= ReceiveLimits.header else {
            countArrival(wireLength: wireLength)
            count(Reg.ruc)
            count(Reg.rlec)
            statistics[.receiveDroppedRunt] &+= 1
            return .consumed
        }
        let limit =
            rctl & (RCTL.longPackets.mask | RCTL.storeBadPackets.mask) != 0
            ? ReceiveLimits.maximumWireFrame : ReceiveLimits.standardWireMaximum
        guard wireLength <= limit else {
            countArrival(wireLength: wireLength)
            count(Reg.roc)
            count(Reg.rlec)
            statistics[.receiveDroppedOversize] &+= 1
            return .consumed
        }
        guard let match = addressFilter(frame, rctl: rctl) else {
            countArrival(wireLength: wireLength)
            statistics[.receiveFiltered] &+= 1
            return .consumed
        }
        let vet = UInt16(truncatingIfNeeded: regs[Reg.vet])
        let tagged = length >= 18 && frame.load(bigEndian: UInt16.self, at: 12) == vet
        let tci = tagged ? frame.load(bigEndian: UInt16.self, at: 14) ?? 0 : 0
        if tagged, rctl & RCTL.vlanFilter.mask != 0 {
            let vid = Int(tci & 0x0FFF)
            guard regs[Reg.vfta + vid >> 5] & (1 << UInt32(vid & 0x1F)) != 0 else {
                countArrival(wireLength: wireLength)
                statistics[.receiveVLANFiltered] &+= 1
                return .consumed
            }
        }
        let strip = tagged && regs[Reg.ctrl] & CTRL.vlanMode.mask != 0
        let appendFCS = rctl & RCTL.stripCRC.mask == 0
        let bodyLength = padded - (strip ? 4 : 0)
        let total = bodyLength + (appendFCS ? 4 : 0)
        let bufferSize = receiveBufferSize
        let needed = (total + bufferSize - 1) / bufferSize

        let ringCount = receiveRingCount
        let head = Int(regs[Reg.rdh])
        let tail = Int(regs[Reg.rdt])
        guard ringCount > 0, head < ringCount, tail < ringCount else {
            return noRoom(looped: looped, wireLength: wireLength, ringError: true)
        }
        let free = (tail - head + ringCount) % ringCount
        guard needed < ringCount else {
            countArrival(wireLength: wireLength)
            count(Reg.mpc)
            statistics[.receiveDroppedRingTooSmall] &+= 1
            return .consumed
        }
        guard free >= needed else { return noRoom(looped: looped, wireLength: wireLength, ringError: false) }
        receiveStalled = false
        countArrival(wireLength: wireLength)

        var status = strip ? ReceiveStatus.vlanPacket.mask : 0
        if match == .inexact { status |= ReceiveStatus.passedInexactFilter.mask }
        let (checksumStatus, errors) = receiveChecksumStatus(frame, networkOffset: tagged ? 18 : 14)
        status |= checksumStatus

        var fcs: UInt32 = 0
        if appendFCS {
            var register = EthernetCRC.update(0xFFFF_FFFF, frame)
            if padded > length {
                Self.zeroPadding.withUnsafeBytes {
                    register = EthernetCRC.update(register, UnsafeRawBufferPointer(rebasing: $0[0..<(padded - length)]))
                }
            }
            fcs = ~register
        }
        let stored: Bool
        if !strip, padded == length {
            stored = store(
                body: frame, fcs: appendFCS ? fcs : nil, status: status, errors: errors, special: 0, free: free)
        } else {
            receiveScratch.withUnsafeMutableBytes { scratch in
                if strip {
                    scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0..<12]))
                    UnsafeMutableRawBufferPointer(rebasing: scratch[12..<(length - 4)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[16..<length]))
                } else {
                    scratch.copyMemory(from: frame)
                }
                let copied = length - (strip ? 4 : 0)
                for i in copied..<bodyLength { scratch[i] = 0 }
            }
            stored = receiveScratch.withUnsafeBytes { scratch in
                store(
                    body: UnsafeRawBufferPointer(rebasing: scratch[0..<bodyLength]), fcs: appendFCS ? fcs : nil,
                    status: status, errors: errors, special: strip ? tci : 0, free: free)
            }
        }
        if stored {
            countReceived(wireLength: wireLength, destinationHigh: frame[0], broadcast: isBroadcast(frame))
        }
        receiveDelayedInterrupt()
        let remaining = (tail - Int(regs[Reg.rdh]) + ringCount) % ringCount
        let shift = Int(RCTL.minimumThreshold.value(in: rctl)) + 1
        if remaining <= ringCount >> shift { raise(ICR.receiveDescriptorMinimum.mask) }
        return .consumed
    }

    static let zeroPadding = [UInt8](repeating: 0, count: ReceiveLimits.minimumFrame)

    private func isBroadcast(_ frame: UnsafeRawBufferPointer) -> Bool {
        (0..<6).allSatisfy { frame[$0] == 0xFF }
    }

    /// The ring cannot take the frame now: count RNBC once per stall; a looped frame has no FIFO to wait in and is
    /// missed.
    private func noRoom(looped: Bool, wireLength: Int, ringError: Bool) -> ReceiveOutcome {
        if !receiveStalled {
            receiveStalled = true
            count(Reg.rnbc)
            if ringError { statistics[.receiveRingErrors] &+= 1 } else { statistics[.receiveNoBuffers] &+= 1 }
        }
        guard looped else { return .waiting }
        countArrival(wireLength: wireLength)
        count(Reg.mpc)
        statistics[.receiveMissed] &+= 1
        raise(ICR.receiveOverrun.mask)
        return .consumed
    }

    /// Writes `body` and the FCS across descriptors from RDH (at most `free` of them), one DMA read and one
    /// write-back per contiguous run, and advances RDH. Null buffer addresses are skipped (written back with DD and
    /// length 0). Returns whether the whole frame went in without error.
    private func store(
        body: UnsafeRawBufferPointer, fcs: UInt32?, status: UInt8, errors: UInt8, special: UInt16, free: Int
    ) -> Bool {
        let ringCount = receiveRingCount
        let bufferSize = receiveBufferSize
        var tail = (fcs ?? 0).littleEndian
        let total = body.count + (fcs == nil ? 0 : 4)
        var head = Int(regs[Reg.rdh])
        var written = 0
        var used = 0
        var failed = false
        let low = regs[Reg.rdbal]
        let high = regs[Reg.rdbah]
        while written < total, used < free {
            let neededNow = (total - written + bufferSize - 1) / bufferSize
            let batch = min(max(neededNow, 1), ringCount - head, free - used, ReceiveLimits.maximumDescriptorsPerFrame)
            guard let address = descriptorAddress(low: low, high: high, index: head) else {
                statistics[.receiveDMAErrors] &+= 1
                failed = true
                break
            }
            do throws(DMAError) {
                try dma.read(at: address, into: &receiveDescriptors, range: 0..<(batch * 16))
            } catch {
                statistics[.receiveDMAErrors] &+= 1
                failed = true
                break
            }
            var processed = 0
            for i in 0..<batch {
                processed += 1
                used += 1
                let buffer = receiveDescriptors.withUnsafeBytes {
                    UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self))
                }
                var chunk = 0
                var descriptorErrors: UInt8 = 0
                if buffer != 0 {
                    chunk = min(bufferSize, total - written)
                    do throws(DMAError) {
                        try writeStream(body: body, tail: &tail, from: written, count: chunk, to: buffer)
                    } catch {
                        statistics[.receiveDMAErrors] &+= 1
                        failed = true
                        descriptorErrors |= ReceiveErrors.receiveError.mask
                    }
                }
                written += chunk
                let complete = written >= total
                let last = complete || used == free
                var descriptorStatus = ReceiveStatus.done.mask | (status & ReceiveStatus.vlanPacket.mask)
                if last {
                    descriptorStatus |= ReceiveStatus.endOfPacket.mask | status
                    descriptorErrors |= errors
                    if !complete {
                        descriptorErrors |= ReceiveErrors.receiveError.mask
                        statistics[.receiveTruncated] &+= 1
                        failed = true
                    }
                }
                receiveDescriptors.withUnsafeMutableBytes { d in
                    let at = i * 16 + 8
                    d.storeBytes(of: UInt16(chunk).littleEndian, toByteOffset: at, as: UInt16.self)
                    d.storeBytes(of: 0, toByteOffset: at + 2, as: UInt16.self)
                    d[at + 4] = descriptorStatus
                    d[at + 5] = descriptorErrors
                    d.storeBytes(of: special.littleEndian, toByteOffset: at + 6, as: UInt16.self)
                }
                if last { break }
            }
            do throws(DMAError) {
                try dma.write(at: address, from: receiveDescriptors, range: 0..<(processed * 16))
            } catch {
                statistics[.receiveDMAErrors] &+= 1
                failed = true
            }
            head = (head + processed) % ringCount
            regs[Reg.rdh] = UInt32(head)
            if written >= total { break }
        }
        return !failed && written >= total
    }

    /// Writes bytes `from..<from+count` of the stream `body` + `tail` (the FCS) to guest address `address`.
    @inline(__always)
    private func writeStream(
        body: UnsafeRawBufferPointer, tail: inout UInt32, from: Int, count: Int, to address: UInt64
    ) throws(DMAError) {
        let bodyEnd = min(from + count, body.count)
        if from < bodyEnd {
            try dma.write(at: GuestAddress(address), from: UnsafeRawBufferPointer(rebasing: body[from..<bodyEnd]))
        }
        let tailStart = max(from, body.count) - body.count
        let tailEnd = from + count - body.count
        guard tailEnd > tailStart else { return }
        guard let at = GuestAddress(address).advanced(by: UInt64(max(0, body.count - from))) else {
            throw DMAError(.wrapsAddressSpace, address: GuestAddress(address), length: count, isWrite: true)
        }
        var failure: DMAError?
        withUnsafeBytes(of: &tail) { bytes in
            do throws(DMAError) {
                try dma.write(at: at, from: UnsafeRawBufferPointer(rebasing: bytes[tailStart..<tailEnd]))
            } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
