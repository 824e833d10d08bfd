import NICCore

/// ICMPv6 message types (RFC 4443, RFC 4861).
enum ICMPv6Type {
    static let unreachable: UInt8 = 1
    static let packetTooBig: UInt8 = 2
    static let timeExceeded: UInt8 = 3
    static let parameterProblem: UInt8 = 4
    static let echoRequest: UInt8 = 128
    static let echoReply: UInt8 = 129
    static let routerSolicitation: UInt8 = 133
    static let routerAdvertisement: UInt8 = 134
    static let neighborSolicitation: UInt8 = 135
    static let neighborAdvertisement: UInt8 = 136
}

extension NATEngine {
    /// The most of an offending packet an ICMPv6 error carries: the whole error fits the minimum MTU, 1280 bytes
    /// (RFC 4443 2.4 c).
    static let icmpv6ErrorRoom = 1280 - 40 - 8

    /// Handles an ICMPv6 message from the guest: NDP here, echo requests to the router's addresses answered here,
    /// others through an unprivileged ICMPv6 ping socket when the policy allows; anything else is counted and dropped.
    func handleICMPv6(_ packet: IPv6Packet, from mac: MACAddress, checksummed: Bool) {
        let message = packet.payload
        guard message.count >= 8 else { return counts.bump(.dropIcmpv6Malformed) }
        if !checksummed {
            let sum = transportChecksum(
                source: packet.source, destination: packet.destination, proto: IPProtocolNumber.icmpv6,
                segment: message)
            guard sum == 0 else { return counts.bump(.dropIcmpv6Checksum) }
        }
        switch message[0] {
        case ICMPv6Type.routerSolicitation: handleRouterSolicitation(packet, from: mac)
        case ICMPv6Type.neighborSolicitation: handleNeighborSolicitation(packet, from: mac)
        case ICMPv6Type.neighborAdvertisement: handleNeighborAdvertisement(packet)
        case ICMPv6Type.echoRequest: handleEcho6(packet)
        default: counts.bump(.dropIcmpv6Type)
        }
    }

    private func handleEcho6(_ packet: IPv6Packet) {
        let message = packet.payload
        guard message[1] == 0 else { return counts.bump(.dropIcmpv6Malformed) }
        guard !packet.source.isUnspecified else { return counts.bump(.dropIpv6Source) }
        if packet.destination.isMulticast { return counts.bump(.dropIcmpv6Type) }
        if isRouterAddress(packet.destination) {
            var reply = message
            reply[0] = ICMPv6Type.echoReply
            reply.storeBigEndian16(0, at: 2)
            reply.storeBigEndian16(
                transportChecksum(
                    source: packet.destination, destination: packet.source, proto: IPProtocolNumber.icmpv6,
                    segment: reply), at: 2)
            counts.bump(.icmpEchoLocal)
            sendToGuest6(
                source: packet.destination, destination: packet.source, nextHeader: IPProtocolNumber.icmpv6,
                payload: reply)
            return
        }
        guard isGuestPrefixAddress(packet.source) else { return counts.bump(.dropIpv6Source) }
        let target: IPEndpoint
        switch route6(to: packet.destination, port: 0, proto: IPProtocolNumber.icmpv6) {
        case .host(let endpoint): target = endpoint
        case .deny(let counter):
            counts.bump(counter)
            sendUnreachable(counter == .dropIPDestination ? .host : .prohibited, about: .v6(packet))
            return
        }
        forwardEcho(message, packet: .v6(packet), to: target)
    }

    /// Sends the guest an ICMPv6 error about `packet`: as much of it as fits in 1280 bytes. Never about an ICMPv6
    /// error, a packet from the unspecified address, or one sent to a multicast group (RFC 4443 2.4 e).
    func sendICMPv6Error(
        type: UInt8, code: UInt8, extra: UInt32 = 0, about packet: IPv6Packet, from source: IPv6Address? = nil
    ) {
        guard !packet.source.isUnspecified, !packet.source.isMulticast, !packet.destination.isMulticast else {
            return
        }
        if packet.nextHeader == IPProtocolNumber.icmpv6 {
            guard packet.payload.isEmpty || packet.payload[0] >= 128 else { return }
        }
        guard allowICMPError() else { return }
        var message: [UInt8] = [type, code, 0, 0]
        message.appendBigEndian32(extra)
        message += (packet.header + packet.payload).prefix(Self.icmpv6ErrorRoom)
        let from = source ?? (packet.source.isLinkLocal ? config.gatewayLinkLocal : config.gateway6)
        message.storeBigEndian16(
            transportChecksum(
                source: from, destination: packet.source, proto: IPProtocolNumber.icmpv6, segment: message), at: 2)
        counts.bump(.icmpErrorsSent)
        sendToGuest6(source: from, destination: packet.source, nextHeader: IPProtocolNumber.icmpv6, payload: message)
    }
}
