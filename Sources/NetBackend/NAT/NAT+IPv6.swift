import NICCore

extension NATEngine {
    /// The addresses the router itself answers to: the gateway (`::2`), the DNS proxy (`::3`) and the router's
    /// link-local address.
    func isRouterAddress(_ address: IPv6Address) -> Bool {
        address == config.gateway6 || address == config.dnsAddress6 || address == config.gatewayLinkLocal
    }

    /// Whether a multicast destination is a group the router belongs to: all nodes, all routers, all DHCPv6 servers,
    /// and the solicited-node groups of its addresses.
    func isRouterGroup(_ address: IPv6Address) -> Bool {
        address == .allNodes || address == .allRouters || address == .allDHCPServers
            || address == config.gateway6.solicitedNode || address == config.dnsAddress6.solicitedNode
            || address == config.gatewayLinkLocal.solicitedNode
    }

    /// Handles an IPv6 frame from the guest. `multicast` tells that the frame went to an Ethernet multicast address,
    /// which only NDP, DHCPv6 and the like use.
    func handleIPv6Frame(_ bytes: [UInt8], from mac: MACAddress, multicast: Bool, checksummed: Bool) {
        guard config.ipv6 else { return counts.bump(.dropIpv6Disabled) }
        let packet: IPv6Packet
        do {
            packet = try IPv6Packet(parsing: bytes, at: 14)
        } catch .fragment {
            return counts.bump(.dropIpv6Fragment)
        } catch .extensionHeader {
            return counts.bump(.dropIpv6ExtensionHeader)
        } catch {
            return counts.bump(.dropIpv6Malformed)
        }
        let source = packet.source
        let fromPrefix = isGuestPrefixAddress(source)
        // The unspecified source is for duplicate address detection (and MLD before an address exists).
        guard fromPrefix || source.isLinkLocal || source.isUnspecified else { return counts.bump(.dropIpv6Source) }
        let destination = packet.destination
        if destination.isMulticast {
            guard isRouterGroup(destination) else { return counts.bump(.dropNotForUs) }
        } else if multicast {
            return counts.bump(.dropNotForUs)
        }
        guestMAC = mac
        if fromPrefix { guestAddress6 = source }
        if source.isLinkLocal { guestLinkLocal = source }
        startRouterAdvertisements()
        let local = destination.isMulticast || isRouterAddress(destination)
        if !local {
            guard packet.hopLimit > 1 else {
                counts.bump(.dropTTLExceeded)
                sendICMPv6Error(type: .timeExceeded, code: 0, about: packet)
                return
            }
            if packet.header.count + packet.payload.count > config.mtu,
                !(currentFrameSegmented && packet.nextHeader == IPProtocolNumber.tcp)
            {
                counts.bump(.dropIPTooBig)
                sendUnreachable(.tooBig, about: .v6(packet))
                return
            }
        }
        switch packet.nextHeader {
        case IPProtocolNumber.icmpv6: handleICMPv6(packet, from: mac, checksummed: checksummed)
        case IPProtocolNumber.udp: handleUDP(.v6(packet), checksummed: checksummed)
        case IPProtocolNumber.tcp: handleTCP(.v6(packet), checksummed: checksummed)
        case IPProtocolNumber.noNextHeader: counts.bump(.dropIPProtocol)
        default:
            counts.bump(.dropIPProtocol)
            // Parameter problem, code 1 (unrecognized next header), pointing at the field that named it.
            sendICMPv6Error(
                type: .parameterProblem, code: 1, extra: UInt32(truncatingIfNeeded: packet.nextHeaderOffset),
                about: packet)
        }
    }

    /// Queues an IPv6 packet for the guest, in fragments (a fragment header each) when it is larger than the MTU.
    /// Multicast destinations go to their Ethernet group address, others to the guest's MAC (or `mac`).
    func sendToGuest6(
        source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payload: [UInt8], hopLimit: UInt8 = 64,
        mac override: MACAddress? = nil
    ) {
        let target: MACAddress
        if destination.isMulticast {
            target = destination.multicastMAC
        } else {
            guard let mac = override ?? guestMAC else { return counts.bump(.dropNoGuestAddress) }
            target = mac
        }
        guard payload.count <= 65_535 - 8 else { return counts.bump(.dropIPTooBig) }
        if 40 + payload.count <= config.mtu {
            let packet = IPv6Packet.build(
                source: source, destination: destination, nextHeader: nextHeader, payload: payload, hopLimit: hopLimit)
            queue(ethernetFrame(to: target, from: config.gatewayMAC, type: EtherType.ipv6, payload: packet))
            return
        }
        // Source fragmentation (RFC 8200 4.5): every fragment but the last carries a multiple of 8 bytes.
        let identification = UInt32(nextIdentification)
        nextIdentification &+= 1
        let room = (config.mtu - 40 - 8) / 8 * 8
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + room)
            var fragment: [UInt8] = [nextHeader, 0]
            fragment.appendBigEndian16(UInt16(truncatingIfNeeded: offset) | (end < payload.count ? 1 : 0))
            fragment.appendBigEndian32(identification)
            fragment += payload[offset..<end]
            let packet = IPv6Packet.build(
                source: source, destination: destination, nextHeader: IPProtocolNumber.fragment, payload: fragment,
                hopLimit: hopLimit)
            queue(ethernetFrame(to: target, from: config.gatewayMAC, type: EtherType.ipv6, payload: packet))
            offset = end
        }
    }

    /// The guest IPv6 address a new flow from the host goes to.
    var defaultGuestAddress6: IPv6Address? { guestAddress6 }
}
