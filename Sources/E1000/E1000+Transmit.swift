import NICCore

/// Transmit limits of the card.
enum TransmitLimits {
    /// Bytes kept free in front of an assembled frame, so a VLAN tag can be inserted without moving the payload.
    static let headroom = 4
    /// The longest frame (without FCS) a non-TSO chain may assemble; longer chains are dropped and counted.
    static let maximumFrame = 16384
    /// The most bytes a TSO chain may assemble (a 64 KiB payload plus the largest header).
    static let segmentationBuffer = 65536 + 256
    /// Descriptors read (and written back) per DMA.
    static let descriptorBatch = 32
    /// Looped-back frames waiting for the receiver; more are dropped and counted.
    static let loopbackQueue = 64
}

/// Transmit descriptor command bits (bits 31:24 of the third dword).
enum TransmitCommand: UInt32, RegisterBit {
    case endOfPacket = 24
    case insertChecksum = 26
    case reportStatus
    /// Report packet sent (legacy descriptors): reported like RS here, since frames leave at once.
    case reportPacketSent, extended, vlan, delayInterrupt

    /// TSE in an extended descriptor: the bit IC is in a legacy one.
    static let segmentation: TransmitCommand = .insertChecksum
}

/// POPTS bits (bits 15:8 of the fourth dword of a data descriptor).
enum TransmitOptions: UInt8, RegisterBit {
    case insertIPChecksum = 0
    case insertTCPChecksum
}

/// A context descriptor's offload parameters. Offsets are from the start of the frame; an end of 0 means the end
/// of the frame.
struct OffloadContext {
    var ipStart = 0
    var ipOffset = 0
    var ipEnd = 0
    var tcpStart = 0
    var tcpOffset = 0
    var tcpEnd = 0
    var payloadLength = 0
    /// TUCMD: TCP (bit 0), IPv4 (bit 1), TSE (bit 2).
    var command: UInt8 = 0
    var headerLength = 0
    var segmentSize = 0

    init() {}

    init(fields: UInt64, lower: UInt32, upper: UInt32) {
        ipStart = Int(fields & 0xFF)
        ipOffset = Int((fields >> 8) & 0xFF)
        ipEnd = Int((fields >> 16) & 0xFFFF)
        tcpStart = Int((fields >> 32) & 0xFF)
        tcpOffset = Int((fields >> 40) & 0xFF)
        tcpEnd = Int((fields >> 48) & 0xFFFF)
        payloadLength = Int(lower & 0xF_FFFF)
        command = UInt8(truncatingIfNeeded: lower >> 24)
        headerLength = Int((upper >> 8) & 0xFF)
        segmentSize = Int(upper >> 16)
    }

    var isIPv4: Bool { command & 0x02 != 0 }
    var isTCP: Bool { command & 0x01 != 0 }
}

/// The frame being assembled from a chain of descriptors. Its kind and offloads come from its first descriptor
/// (and the context in force then); VLE and the VLAN tag from its last.
struct TransmitAssembly {
    var active = false
    var length = 0
    var overflow = false
    var dmaFailed = false
    var segmentation = false
    var options: UInt8 = 0
    /// A legacy descriptor's IC: checksum from CSS to the end, stored at CSO.
    var legacyChecksum: (start: Int, offset: Int)?
    var context = OffloadContext()
}

extension E1000Card {
    /// Descriptors in the transmit ring.
    var transmitRingCount: Int { Int(regs[Reg.tdlen] & 0x000F_FF80) / 16 }

    /// The TDT doorbell (also TCTL.EN and bus mastering coming on): walks the ring from TDH to TDT, at most one ring
    /// length per call, reading descriptors in batches with one DMA and writing DD back with one. Never re-entered;
    /// looped-back frames reach the receiver after the walk.
    func transmit() {
        guard regs[Reg.tctl] & TCTL.enable.mask != 0, !transmitting, config.command.contains(.busMaster) else { return }
        let ringCount = transmitRingCount
        guard ringCount > 0 else { return }
        var head = Int(regs[Reg.tdh])
        let tail = Int(regs[Reg.tdt])
        guard head < ringCount, tail < ringCount else {
            statistics[.transmitRingErrors] &+= 1
            return
        }
        guard head != tail else { return }
        transmitting = true
        defer { transmitting = false }
        let low = regs[Reg.tdbal]
        let high = regs[Reg.tdbah]
        var budget = ringCount
        var reportImmediate = false
        var reportDelayed = false
        while head != tail, budget > 0 {
            let contiguous = tail > head ? tail - head : ringCount - head
            let batch = min(contiguous, TransmitLimits.descriptorBatch, budget)
            guard let address = descriptorAddress(low: low, high: high, index: head) else {
                statistics[.transmitDMAErrors] &+= 1
                break
            }
            do throws(DMAError) {
                try dma.read(at: address, into: &transmitDescriptors, range: 0..<(batch * 16))
            } catch {
                statistics[.transmitDMAErrors] &+= 1
                break
            }
            var firstReport = -1
            var lastReport = -1
            for i in 0..<batch {
                let (buffer, words) = transmitDescriptors.withUnsafeBytes {
                    (
                        UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self)),
                        UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self))
                    )
                }
                let lower = UInt32(truncatingIfNeeded: words)
                let upper = UInt32(truncatingIfNeeded: words >> 32)
                processTransmitDescriptor(buffer: buffer, lower: lower, upper: upper)
                let report =
                    lower & TransmitCommand.extended.mask == 0
                    ? TransmitCommand.reportStatus.mask | TransmitCommand.reportPacketSent.mask
                    : TransmitCommand.reportStatus.mask
                guard lower & report != 0 else { continue }
                transmitDescriptors[i * 16 + 12] |= 1  // DD
                if firstReport < 0 { firstReport = i }
                lastReport = i
                if lower & TransmitCommand.delayInterrupt.mask != 0 {
                    reportDelayed = true
                } else {
                    reportImmediate = true
                }
            }
            if firstReport >= 0, let at = address.advanced(by: UInt64(firstReport * 16)) {
                do throws(DMAError) {
                    try dma.write(
                        at: at, from: transmitDescriptors, range: (firstReport * 16)..<((lastReport + 1) * 16))
                } catch {
                    statistics[.transmitDMAErrors] &+= 1
                }
            }
            head = (head + batch) % ringCount
            budget -= batch
            regs[Reg.tdh] = UInt32(head)
        }
        if head == tail { raise(ICR.transmitQueueEmpty.mask) }
        if reportImmediate || reportDelayed { transmitDelayedInterrupt(immediate: reportImmediate) }
        drainLoopback()
        updateInterrupts()
    }

    /// One descriptor: a context descriptor loads the TSO or the checksum context; a data or legacy descriptor adds
    /// its buffer to the frame and, with EOP, finishes it.
    private func processTransmitDescriptor(buffer: UInt64, lower: UInt32, upper: UInt32) {
        let length: Int
        if lower & TransmitCommand.extended.mask != 0 {
            switch (lower >> 20) & 0xF {
            case 0:
                let context = OffloadContext(fields: buffer, lower: lower, upper: upper)
                if lower & TransmitCommand.segmentation.mask != 0 {
                    segmentationContext = context
                } else {
                    checksumContext = context
                }
                return
            case 1:
                if !assembly.active {
                    let segmentation = lower & TransmitCommand.segmentation.mask != 0
                    assembly.active = true
                    assembly.segmentation = segmentation
                    assembly.options = UInt8(truncatingIfNeeded: upper >> 8)
                    assembly.context = segmentation ? segmentationContext : checksumContext
                }
                length = Int(lower & 0xF_FFFF)
            default:
                return
            }
        } else {
            if !assembly.active {
                assembly.active = true
                if lower & TransmitCommand.insertChecksum.mask != 0 {
                    assembly.legacyChecksum = (Int((upper >> 8) & 0xFF), Int((lower >> 16) & 0xFF))
                }
            }
            length = Int(lower & 0xFFFF)
        }
        append(buffer: buffer, length: length)
        if lower & TransmitCommand.endOfPacket.mask != 0 {
            let vlan = lower & TransmitCommand.vlan.mask != 0 ? UInt16(truncatingIfNeeded: upper >> 16) : nil
            finishFrame(vlan: vlan)
        }
    }

    /// Copies a descriptor's buffer into the assembly buffer, unless the frame already outgrew its cap.
    private func append(buffer: UInt64, length: Int) {
        guard length > 0, !assembly.overflow else { return }
        let cap = assembly.segmentation ? TransmitLimits.segmentationBuffer : TransmitLimits.maximumFrame
        guard length <= cap - assembly.length else {
            assembly.overflow = true
            return
        }
        let start = TransmitLimits.headroom + assembly.length
        assembly.length += length
        guard !assembly.dmaFailed else { return }
        do throws(DMAError) {
            try dma.read(at: GuestAddress(buffer), into: &transmitBuffer, range: start..<(start + length))
        } catch {
            assembly.dmaFailed = true
            statistics[.transmitDMAErrors] &+= 1
        }
    }

    /// Completes the assembled frame at its EOP descriptor: offloads, VLAN insertion, then out (or looped back).
    private func finishFrame(vlan: UInt16?) {
        let frame = assembly
        assembly = TransmitAssembly()
        let tag = regs[Reg.ctrl] & CTRL.vlanMode.mask != 0 ? vlan : nil
        if frame.overflow {
            statistics[.transmitDroppedOversize] &+= 1
            if frame.segmentation { count(Reg.tsctfc) }
            return
        }
        guard !frame.dmaFailed else { return }
        if frame.segmentation {
            segment(frame, vlan: tag)
            return
        }
        let start = TransmitLimits.headroom
        if let legacy = frame.legacyChecksum {
            Self.insertChecksum(
                &transmitBuffer, frame: start, length: frame.length, start: legacy.start, offset: legacy.offset, end: 0,
                transport: true)
        } else {
            let context = frame.context
            if frame.options & TransmitOptions.insertTCPChecksum.mask != 0 {
                Self.insertChecksum(
                    &transmitBuffer, frame: start, length: frame.length, start: context.tcpStart,
                    offset: context.tcpOffset, end: context.tcpEnd, transport: true)
            }
            if frame.options & TransmitOptions.insertIPChecksum.mask != 0 {
                Self.insertChecksum(
                    &transmitBuffer, frame: start, length: frame.length, start: context.ipStart,
                    offset: context.ipOffset, end: context.ipEnd, transport: false)
            }
        }
        emit(&transmitBuffer, start: start, length: frame.length, vlan: tag)
    }

    /// Stores the Internet checksum of `start...end` (to the frame's end when `end` is 0 or past it) at `offset`,
    /// summing the field's current contents (the guest's seed). A transport checksum of 0 is sent as 0xFFFF. Offsets
    /// outside the frame leave it untouched.
    static func insertChecksum(
        _ buffer: inout [UInt8], frame: Int, length: Int, start: Int, offset: Int, end: Int, transport: Bool
    ) {
        let stop = end == 0 || end >= length ? length : end + 1
        guard start < stop, offset <= length - 2 else { return }
        var sum = InternetChecksum()
        buffer.withUnsafeBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[(frame + start)..<(frame + stop)])) }
        var value = sum.value
        if transport, value == 0 { value = 0xFFFF }
        buffer.storeBigEndian16(value, at: frame + offset)
    }

    /// Sends `length` bytes at `start` of `buffer` (which has `TransmitLimits.headroom` bytes free before `start`):
    /// inserts the VLAN tag, pads short frames when TCTL.PSP, then to the port, or to the receiver in loopback mode.
    func emit(_ buffer: inout [UInt8], start: Int, length: Int, vlan: UInt16?) {
        guard length > 0 else {
            statistics[.transmitDroppedEmpty] &+= 1
            return
        }
        var start = start
        var length = length
        if let vlan, length >= 12, start >= 4 {
            let vet = UInt16(truncatingIfNeeded: regs[Reg.vet])
            buffer.withUnsafeMutableBytes { bytes in
                for i in 0..<12 { bytes[start - 4 + i] = bytes[start + i] }
                bytes.store(bigEndian: vet, at: start + 8)
                bytes.store(bigEndian: vlan, at: start + 10)
            }
            start -= 4
            length += 4
        }
        if regs[Reg.tctl] & TCTL.padShortPackets.mask != 0, length < ReceiveLimits.minimumFrame {
            for i in (start + length)..<(start + ReceiveLimits.minimumFrame) { buffer[i] = 0 }
            length = ReceiveLimits.minimumFrame
        }
        let looped = loopbackMode
        guard looped || linkUp else {
            statistics[.transmitDroppedLinkDown] &+= 1
            return
        }
        let first = buffer[start]
        let broadcast = length >= 6 && buffer[start..<(start + 6)].allSatisfy { $0 == 0xFF }
        buffer.withUnsafeBytes { bytes in
            let frame = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
            if looped {
                if loopbackQueue.count < TransmitLimits.loopbackQueue {
                    loopbackQueue.append(Array(frame))
                } else {
                    statistics[.loopbackDropped] &+= 1
                }
            } else {
                port.transmit(frame, metadata: .none)
            }
        }
        countTransmitted(
            wireLength: max(length, ReceiveLimits.minimumFrame) + 4, destinationHigh: first, broadcast: broadcast)
    }
}
