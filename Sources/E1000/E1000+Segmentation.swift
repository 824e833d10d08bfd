import NICCore

/// TCP segmentation offload (TSE): the assembled chain is a header of HDRLEN bytes and a payload cut into MSS-sized
/// segments. Each segment repeats the header with the IPv4 total length (or IPv6 payload length), the IPv4
/// identification plus the segment's index, the TCP sequence number advanced by the payload already sent, PSH and
/// FIN only on the last segment (or the UDP length), then the IP header checksum (POPTS.IXSM) and the TCP/UDP
/// checksum (POPTS.TXSM: the segment's transport length is added to the pseudo-header sum the guest seeded).
///
/// A context that cannot describe the chain (MSS or HDRLEN 0, a header longer than the chain, segments longer than
/// a frame) drops the chain and counts TSCTFC. Every header field is written only when it lies inside the header.
extension E1000Card {
    func segment(_ frame: TransmitAssembly, vlan: UInt16?) {
        let context = frame.context
        let header = context.headerLength
        let mss = context.segmentSize
        let total = frame.length
        count(Reg.tsctc)
        statistics[.transmitSegmentationFrames] &+= 1
        guard mss > 0, header > 0, header <= total, mss <= TransmitLimits.maximumFrame - header else {
            count(Reg.tsctfc)
            statistics[.transmitSegmentationErrors] &+= 1
            return
        }
        let source = TransmitLimits.headroom
        let start = TransmitLimits.headroom
        let payload = total - header
        let segments = payload == 0 ? 1 : (payload - 1) / mss + 1
        let identification = Self.load16(transmitBuffer, source, context.ipStart + 4, within: header)
        let sequence = Self.load32(transmitBuffer, source, context.tcpStart + 4, within: header)
        let seed = Self.load16(transmitBuffer, source, context.tcpOffset, within: header)
        var sent = 0
        for index in 0..<segments {
            let chunk = min(mss, payload - sent)
            let last = index == segments - 1
            let length = header + chunk
            transmitBuffer.withUnsafeBytes { from in
                segmentBuffer.withUnsafeMutableBytes { to in
                    UnsafeMutableRawBufferPointer(rebasing: to[start..<(start + header)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: from[source..<(source + header)]))
                    let payloadStart = source + header + sent
                    UnsafeMutableRawBufferPointer(rebasing: to[(start + header)..<(start + length)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: from[payloadStart..<(payloadStart + chunk)]))
                }
            }
            if context.isIPv4 {
                store16(UInt16(truncatingIfNeeded: length - context.ipStart), at: context.ipStart + 2, header: header)
                if let identification {
                    store16(
                        identification &+ UInt16(truncatingIfNeeded: index), at: context.ipStart + 4, header: header)
                }
            } else if length >= context.ipStart + 40 {
                store16(
                    UInt16(truncatingIfNeeded: length - context.ipStart - 40), at: context.ipStart + 4, header: header)
            }
            if context.isTCP {
                if let sequence {
                    store32(sequence &+ UInt32(truncatingIfNeeded: sent), at: context.tcpStart + 4, header: header)
                }
                if !last, context.tcpStart + 13 < header { segmentBuffer[start + context.tcpStart + 13] &= ~0x09 }
            } else if length >= context.tcpStart {
                store16(UInt16(truncatingIfNeeded: length - context.tcpStart), at: context.tcpStart + 4, header: header)
            }
            if frame.options & TransmitOptions.insertIPChecksum.mask != 0 {
                Self.insertChecksum(
                    &segmentBuffer, frame: start, length: length, start: context.ipStart, offset: context.ipOffset,
                    end: context.ipEnd, transport: false)
            }
            if frame.options & TransmitOptions.insertTCPChecksum.mask != 0, let seed, length > context.tcpStart {
                var partial = UInt32(seed) &+ UInt32(truncatingIfNeeded: length - context.tcpStart)
                partial = (partial & 0xFFFF) &+ (partial >> 16)
                partial = (partial & 0xFFFF) &+ (partial >> 16)
                store16(UInt16(truncatingIfNeeded: partial), at: context.tcpOffset, header: header)
                Self.insertChecksum(
                    &segmentBuffer, frame: start, length: length, start: context.tcpStart, offset: context.tcpOffset,
                    end: 0, transport: true)
            }
            emit(&segmentBuffer, start: start, length: length, vlan: vlan)
            sent += chunk
        }
    }

    private static func load16(_ buffer: [UInt8], _ base: Int, _ offset: Int, within header: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= header else { return nil }
        return buffer.bigEndian16(at: base + offset)
    }

    private static func load32(_ buffer: [UInt8], _ base: Int, _ offset: Int, within header: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= header else { return nil }
        return buffer.bigEndian32(at: base + offset)
    }

    private func store16(_ value: UInt16, at offset: Int, header: Int) {
        guard offset >= 0, offset + 2 <= header else { return }
        segmentBuffer.storeBigEndian16(value, at: TransmitLimits.headroom + offset)
    }

    private func store32(_ value: UInt32, at offset: Int, header: Int) {
        guard offset >= 0, offset + 4 <= header else { return }
        segmentBuffer.storeBigEndian32(value, at: TransmitLimits.headroom + offset)
    }
}
