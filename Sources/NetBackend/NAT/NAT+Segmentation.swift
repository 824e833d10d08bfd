import NICCore

extension NATEngine {
    /// Queues a TCP segment larger than the MTU for a guest link that segments (``guestSegmentation``): one frame with
    /// segmentation and checksum metadata, its checksum field holding the pseudo-header sum, as a virtio-net device
    /// hands a guest a coalesced receive. `segment` is at most 65,535 bytes less the IP header.
    func sendSegmentedToGuest(source: IPAddress, destination: IPAddress, segment: [UInt8], segmentSize: Int) {
        guard let mac = guestMAC else { return counts.bump(.dropNoGuestAddress) }
        let headerLength = Int(segment.u8(12) >> 4) * 4
        let packet: [UInt8]
        let type: UInt16
        let kind: SegmentationRequest.Kind
        switch (source, destination) {
        case (.v4(let from), .v4(let to)):
            guard segment.count <= 65_535 - 20 else { return counts.bump(.dropIPTooBig) }
            packet = IPv4Packet.build(
                source: from, destination: to, proto: IPProtocolNumber.tcp, payload: segment,
                identification: nextIdentification, dontFragment: true)
            nextIdentification &+= 1
            (type, kind) = (EtherType.ipv4, .tcpIPv4)
        case (.v6(let from), .v6(let to)):
            guard segment.count <= 65_535 else { return counts.bump(.dropIPTooBig) }
            packet = IPv6Packet.build(source: from, destination: to, nextHeader: IPProtocolNumber.tcp, payload: segment)
            (type, kind) = (EtherType.ipv6, .tcpIPv6)
        default:
            return counts.bump(.dropNoGuestAddress)
        }
        let start = 14 + packet.count - segment.count
        let metadata = FrameMetadata(
            checksum: ChecksumRequest(start: start, offset: 16),
            segmentation: SegmentationRequest(kind: kind, segmentSize: segmentSize, headerLength: start + headerLength))
        queue(ethernetFrame(to: mac, from: config.gatewayMAC, type: type, payload: packet), metadata: metadata)
    }
}
