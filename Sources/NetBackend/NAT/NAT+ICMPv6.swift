import NICCore

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
        switch ICMPv6Type(rawValue: message[0]) {
        case .routerSolicitation: handleRouterSolicitation(packet, from: mac)
        case .neighborSolicitation: handleNeighborSolicitation(packet, from: mac)
        case .neighborAdvertisement: handleNeighborAdvertisement(packet)
        case .echoRequest: handleEcho6(packet)
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
            reply[0] = ICMPv6Type.echoReply.rawValue
            reply.storeBigEndian16(0, at: 2)
            counts.bump(.icmpEchoLocal)
            sendICMPv6(reply, from: packet.destination, to: packet.source)
            return
        }
        guard isGuestPrefixAddress(packet.source) else { return counts.bump(.dropIpv6Source) }
        let target: IPEndpoint
        switch route(to: .v6(packet.destination), port: 0, proto: IPProtocolNumber.icmpv6) {
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
        type: ICMPv6Type, code: UInt8, extra: UInt32 = 0, about packet: IPv6Packet, from source: IPv6Address? = nil
    ) {
        guard !packet.source.isUnspecified, !packet.source.isMulticast, !packet.destination.isMulticast else {
            return
        }
        if packet.nextHeader == IPProtocolNumber.icmpv6 {
            guard packet.payload.isEmpty || packet.payload[0] >= 128 else { return }
        }
        guard allowICMPError() else { return }
        var message: [UInt8] = [type.rawValue, code, 0, 0]
        message.appendBigEndian32(extra)
        message += (packet.header + packet.payload).prefix(Self.icmpv6ErrorRoom)
        let from = source ?? (packet.source.isLinkLocal ? config.gatewayLinkLocal : config.gateway6)
        counts.bump(.icmpErrorsSent)
        sendICMPv6(message, from: from, to: packet.source)
    }

    /// Sends the guest an ICMPv6 message (its checksum field zero) with the checksum filled in.
    func sendICMPv6(
        _ message: [UInt8], from source: IPv6Address, to destination: IPv6Address, hopLimit: UInt8 = 64,
        mac: MACAddress? = nil
    ) {
        var message = message
        message.storeBigEndian16(
            transportChecksum(
                source: source, destination: destination, proto: IPProtocolNumber.icmpv6, segment: message), at: 2)
        sendToGuest6(
            source: source, destination: destination, nextHeader: IPProtocolNumber.icmpv6, payload: message,
            hopLimit: hopLimit, mac: mac)
    }
}
