import NICCore

/// When the router sends its next unsolicited advertisement: three at first, 4 s apart (RFC 4861 6.2.4 allows up
/// to 16 s), then every ``NATTimeouts/routerAdvertisement`` seconds. Nothing is sent before the guest's first IPv6
/// packet.
struct RouterAdvertisementSchedule {
    var started = false
    var sent = 0
    var next: UInt64 = .max

    static let initialCount = 3
    static let initialInterval: Double = 4
}

/// NDP option types (RFC 4861 4.6, RFC 8106).
enum NDPOption: UInt8 {
    case sourceLinkLayer = 1
    case targetLinkLayer, prefixInformation
    case mtu = 5
    case recursiveDNSServer = 25
    case dnsSearchList = 31
}

extension NATEngine {
    /// The options after `start` in an NDP message, type and whole option; `nil` when one has length 0 or runs past
    /// the end (RFC 4861 says to drop such a message). Each option is at least 8 bytes, so the walk ends.
    func ndpOptions(_ message: [UInt8], from start: Int) -> [(type: UInt8, bytes: [UInt8])]? {
        var options: [(type: UInt8, bytes: [UInt8])] = []
        var index = start
        while index < message.count {
            guard index + 2 <= message.count else { return nil }
            let length = Int(message[index + 1]) * 8
            guard length > 0, index + length <= message.count else { return nil }
            options.append((message[index], Array(message[index..<(index + length)])))
            index += length
        }
        return options
    }

    /// The MAC address in a source or target link-layer address option, if the options have one of `type`.
    private func linkLayerAddress(_ options: [(type: UInt8, bytes: [UInt8])], type: NDPOption) -> MACAddress? {
        guard let option = options.first(where: { $0.type == type.rawValue }), option.bytes.count >= 8 else {
            return nil
        }
        return MACAddress(bytes: option.bytes[2..<8])
    }

    /// Answers a neighbor solicitation for one of the router's addresses. A duplicate address detection probe (from
    /// `::`) is answered only when it probes the router's own address (defending it); a guest probing its own
    /// tentative address hears nothing.
    func handleNeighborSolicitation(_ packet: IPv6Packet, from mac: MACAddress) {
        let message = packet.payload
        guard packet.hopLimit == 255, message[1] == 0, message.count >= 24,
            let target = IPv6Address(in: message, at: 8), !target.isMulticast,
            let options = ndpOptions(message, from: 24)
        else { return counts.bump(.dropNdpMalformed) }
        let sourceLinkLayer = linkLayerAddress(options, type: .sourceLinkLayer)
        if packet.source.isUnspecified {
            guard packet.destination == target.solicitedNode, sourceLinkLayer == nil else {
                return counts.bump(.dropNdpMalformed)
            }
            guard isRouterAddress(target) else { return }
            counts.bump(.ndpDefended)
            sendNeighborAdvertisement(for: target, to: .allNodes, solicited: false, mac: nil)
            return
        }
        guard packet.destination == target || packet.destination == target.solicitedNode else {
            return counts.bump(.dropNdpMalformed)
        }
        guard isRouterAddress(target) else { return counts.bump(.dropNotForUs) }
        let replyMAC = sourceLinkLayer ?? mac
        guestMAC = replyMAC
        sendNeighborAdvertisement(for: target, to: packet.source, solicited: true, mac: replyMAC)
    }

    /// Learns from the guest's neighbor advertisements (its MAC; its address in the prefix, once it is no longer
    /// tentative and announces it).
    func handleNeighborAdvertisement(_ packet: IPv6Packet) {
        let message = packet.payload
        guard packet.hopLimit == 255, message[1] == 0, message.count >= 24,
            let target = IPv6Address(in: message, at: 8), !target.isMulticast,
            let options = ndpOptions(message, from: 24)
        else { return counts.bump(.dropNdpMalformed) }
        if let mac = linkLayerAddress(options, type: .targetLinkLayer) { guestMAC = mac }
        if isGuestPrefixAddress(target) { guestAddress6 = target }
    }

    private func sendNeighborAdvertisement(
        for target: IPv6Address, to destination: IPv6Address, solicited: Bool, mac: MACAddress?
    ) {
        // Router, solicited (for an answer), override.
        var message: [UInt8] = [ICMPv6Type.neighborAdvertisement.rawValue, 0, 0, 0, solicited ? 0xE0 : 0xA0, 0, 0, 0]
        message += target.bytes
        message += [NDPOption.targetLinkLayer.rawValue, 1] + config.gatewayMAC.bytes
        counts.bump(.ndpAdvertisements)
        sendICMPv6(message, from: target, to: destination, hopLimit: 255, mac: mac)
    }

    /// Answers a router solicitation with a router advertisement: unicast to a guest that has an address, to all
    /// nodes for one soliciting from `::`.
    func handleRouterSolicitation(_ packet: IPv6Packet, from mac: MACAddress) {
        let message = packet.payload
        guard packet.hopLimit == 255, message[1] == 0, let options = ndpOptions(message, from: 8) else {
            return counts.bump(.dropNdpMalformed)
        }
        let sourceLinkLayer = linkLayerAddress(options, type: .sourceLinkLayer)
        if packet.source.isUnspecified {
            guard sourceLinkLayer == nil else { return counts.bump(.dropNdpMalformed) }
            sendRouterAdvertisement(to: .allNodes)
        } else {
            sendRouterAdvertisement(to: packet.source, mac: sourceLinkLayer ?? mac)
        }
    }

    /// The router lifetime advertised: three times the unsolicited interval, 1800 to 9000 s (RFC 4861 6.2.1).
    var routerLifetime: UInt16 {
        // Whole seconds rounded up without libm's ceil: libVNIC.a hosts link no libm.
        let interval = config.timeouts.routerAdvertisement
        let seconds = interval.isFinite ? min(max(3 * interval, 0), 9000) : 9000
        var whole = Int(seconds)
        if Double(whole) < seconds { whole += 1 }
        return UInt16(min(9000, max(1800, whole)))
    }

    /// The router advertisement: hop limit 64, O (other configuration: stateless DHCPv6) set and M clear, the
    /// router's MAC, the MTU, the prefix with on-link and autonomous set (SLAAC), the DNS proxy as RDNSS and the
    /// domain as DNSSL when there is one.
    func routerAdvertisement() -> [UInt8] {
        var message: [UInt8] = [ICMPv6Type.routerAdvertisement.rawValue, 0, 0, 0, 64, 0x40]
        message.appendBigEndian16(routerLifetime)
        message.appendBigEndian32(0)  // reachable time: unspecified
        message.appendBigEndian32(0)  // retransmission timer: unspecified
        message += [NDPOption.sourceLinkLayer.rawValue, 1] + config.gatewayMAC.bytes
        message += [NDPOption.mtu.rawValue, 1, 0, 0]
        message.appendBigEndian32(UInt32(truncatingIfNeeded: config.mtu))
        message += [NDPOption.prefixInformation.rawValue, 4, UInt8(config.prefix6.prefixLength), 0xC0]
        message.appendBigEndian32(86_400)  // valid lifetime
        message.appendBigEndian32(14_400)  // preferred lifetime
        message.appendBigEndian32(0)
        message += config.prefix6.address.bytes
        message += [NDPOption.recursiveDNSServer.rawValue, 3, 0, 0]
        message.appendBigEndian32(UInt32(routerLifetime))
        message += config.dnsAddress6.bytes
        if let domain = config.domainName, let encoded = DNSName.encode(domain) {
            var option: [UInt8] = [NDPOption.dnsSearchList.rawValue, 0, 0, 0]
            option.appendBigEndian32(UInt32(routerLifetime))
            option += encoded
            while option.count % 8 != 0 { option.append(0) }
            option[1] = UInt8(truncatingIfNeeded: option.count / 8)
            if option.count / 8 <= 255 { message += option }
        }
        return message
    }

    /// Sends a router advertisement from the router's link-local address to `destination`.
    func sendRouterAdvertisement(to destination: IPv6Address, mac: MACAddress? = nil) {
        counts.bump(.ndpRouterAdvertisements)
        sendICMPv6(routerAdvertisement(), from: config.gatewayLinkLocal, to: destination, hopLimit: 255, mac: mac)
    }

    /// Starts the unsolicited advertisements (on the guest's first IPv6 packet).
    func startRouterAdvertisements() {
        guard !routerAdvertisements.started else { return }
        routerAdvertisements.started = true
        routerAdvertisements.next = now &+ nanoseconds(RouterAdvertisementSchedule.initialInterval)
        arm(routerAdvertisements.next)
    }

    /// Sends the unsolicited advertisement when it is due; the next deadline.
    func runRouterAdvertisementTimer() -> UInt64? {
        guard routerAdvertisements.started, config.ipv6 else { return nil }
        if routerAdvertisements.next <= now {
            sendRouterAdvertisement(to: .allNodes)
            routerAdvertisements.sent += 1
            let interval =
                routerAdvertisements.sent < RouterAdvertisementSchedule.initialCount
                ? RouterAdvertisementSchedule.initialInterval : max(4, config.timeouts.routerAdvertisement)
            routerAdvertisements.next = now &+ nanoseconds(interval)
        }
        return routerAdvertisements.next
    }
}

/// Domain names in DNS wire format (RFC 1035 3.1), for the DNSSL option and DHCPv6's domain list.
enum DNSName {
    /// `example.org` as `7example3org0`; `nil` when a label is empty or longer than 63 bytes, or the name longer
    /// than 255.
    static func encode(_ name: String) -> [UInt8]? {
        var encoded: [UInt8] = []
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count) else { return nil }
            encoded.append(UInt8(bytes.count))
            encoded += bytes
        }
        encoded.append(0)
        return encoded.count <= 255 ? encoded : nil
    }
}
