import NICCore

extension NATEngine {
    /// Queues the guest a data segment of `connection` carrying `range` of its buffer, through a guest link that offloads:
    /// the frame is built in one pass, the payload copied once and not summed (checksum metadata), and split into
    /// `segmentSize` segments by the guest's stack when larger (segmentation metadata).
    func sendOffloadedData(
        _ connection: NATTCPConnection, flags: TCPFlags, sequence: UInt32, range: Range<Int>, window: Int?,
        segmentSize: Int
    ) {
        let key = connection.key
        guard let mac = guestMAC else { return counts.bump(.dropNoGuestAddress) }
        guard range.lowerBound >= 0, range.upperBound <= connection.buffer.count else {
            return counts.bump(.dropIPTooBig)
        }
        let field = connection.windowField(flags: flags, known: window)
        connection.ackDeferred = false  // the segment acknowledges everything so far
        connection.acknowledgedUpTo = connection.receiveNext
        let tcpLength = 20 + range.count
        let ipHeader: Int
        let type: UInt16
        let kind: SegmentationRequest.Kind
        switch (key.remote.address, key.guest.address) {
        case (.v4, .v4): (ipHeader, type, kind) = (20, EtherType.ipv4, .tcpIPv4)
        case (.v6, .v6): (ipHeader, type, kind) = (40, EtherType.ipv6, .tcpIPv6)
        default: return counts.bump(.dropNoGuestAddress)
        }
        guard tcpLength <= 65_535 - (ipHeader == 20 ? 20 : 0),
            let pseudo = pseudoHeaderSum(
                source: key.remote.address, destination: key.guest.address, proto: IPProtocolNumber.tcp,
                length: tcpLength)
        else { return counts.bump(.dropIPTooBig) }
        var frame: [UInt8] = []
        frame.reserveCapacity(14 + ipHeader + tcpLength)
        frame += mac.bytes
        frame += config.gatewayMAC.bytes
        frame.appendBigEndian16(type)
        switch (key.remote.address, key.guest.address) {
        case (.v4(let from), .v4(let to)):
            frame += [0x45, 0]
            frame.appendBigEndian16(UInt16(truncatingIfNeeded: 20 + tcpLength))
            frame.appendBigEndian16(nextIdentification)
            nextIdentification &+= 1
            frame.appendBigEndian16(0x4000)
            frame += [64, IPProtocolNumber.tcp, 0, 0]
            frame += from.bytes
            frame += to.bytes
            var checksum = InternetChecksum()
            frame.withUnsafeBytes { checksum.add(UnsafeRawBufferPointer(rebasing: $0[14..<34])) }
            frame.storeBigEndian16(checksum.value, at: 24)
        case (.v6(let from), .v6(let to)):
            frame.appendBigEndian32(0x6000_0000)
            frame.appendBigEndian16(UInt16(truncatingIfNeeded: tcpLength))
            frame += [IPProtocolNumber.tcp, 64]
            frame += from.bytes
            frame += to.bytes
        default: return
        }
        frame.appendBigEndian16(key.remote.port)
        frame.appendBigEndian16(key.guest.port)
        frame.appendBigEndian32(sequence)
        frame.appendBigEndian32(connection.receiveNext)
        frame += [5 << 4, flags.rawValue]
        frame.appendBigEndian16(field)
        frame.appendBigEndian16(~pseudo.value)
        frame.appendBigEndian16(0)
        frame += connection.buffer[range]
        let start = 14 + ipHeader
        let metadata = FrameMetadata(
            checksum: ChecksumRequest(start: start, offset: 16),
            segmentation: range.count > segmentSize
                ? SegmentationRequest(kind: kind, segmentSize: segmentSize, headerLength: start + 20) : nil)
        queue(frame, metadata: metadata)
    }
}
