import NICCore

/// DHCPv6 constants (RFC 8415).
enum DHCPv6 {
    /// Message types (RFC 8415 7.3).
    enum Message: UInt8 {
        case solicit = 1
        case advertise, request, confirm, renew, rebind, reply, release, decline, reconfigure, informationRequest
    }

    /// Option codes (RFC 8415 21, RFC 3646).
    enum Option: UInt16 {
        case clientIdentifier = 1
        case serverIdentifier, identityAssociation
        case statusCode = 13
        case dnsServers = 23
        case domainList
    }

    /// A Status Code option's data: NoAddrsAvail (2) and why.
    static let noAddressesAvailable: [UInt8] = [0, 2] + Array("addresses come from SLAAC".utf8)
    /// The most options one message may carry before it is dropped.
    static let maximumOptions = 64
}

extension NATEngine {
    /// The server's DUID: DUID-LL (type 3), hardware type Ethernet, the gateway MAC.
    var serverDUID: [UInt8] { [0, 3, 0, 1] + config.gatewayMAC.bytes }

    /// Answers DHCPv6 as a stateless server (RFC 8415 with addresses from SLAAC): an Information-Request gets the
    /// DNS proxy and the domain list; a Solicit gets an Advertise that says NoAddrsAvail (18.3.9: only the status,
    /// the server's and the client's identifiers); a Request, Renew or Rebind gets a Reply with each of its IA_NAs
    /// marked NoAddrsAvail. Everything else, and anything addressed to another server, is ignored.
    func handleDHCPv6(_ payload: [UInt8], from packet: IPv6Packet) {
        guard packet.destination == .allDHCPServers || isRouterAddress(packet.destination) else {
            return counts.bump(.dropNotForUs)
        }
        guard packet.source.isLinkLocal || isGuestPrefixAddress(packet.source) else {
            return counts.bump(.dropIpv6Source)
        }
        guard payload.count >= 4 else { return counts.bump(.dropDhcpv6Malformed) }
        var options: [(code: UInt16, data: [UInt8])] = []
        var index = 4
        while index < payload.count {
            guard index + 4 <= payload.count, options.count < DHCPv6.maximumOptions else {
                return counts.bump(.dropDhcpv6Malformed)
            }
            let code = payload.bigEndian16(at: index)
            let length = Int(payload.bigEndian16(at: index + 2))
            guard index + 4 + length <= payload.count else { return counts.bump(.dropDhcpv6Malformed) }
            options.append((code, Array(payload[(index + 4)..<(index + 4 + length)])))
            index += 4 + length
        }
        func option(_ code: DHCPv6.Option) -> [UInt8]? { options.first { $0.code == code.rawValue }?.data }
        if let server = option(.serverIdentifier), server != serverDUID {
            return counts.bump(.dhcpv6Ignored)
        }
        let client = option(.clientIdentifier)
        var reply: [UInt8] = []
        func add(_ code: DHCPv6.Option, _ data: [UInt8]) { reply.appendDHCPv6Option(code, data) }
        let transaction = Array(payload[1..<4])
        switch DHCPv6.Message(rawValue: payload[0]) {
        case .informationRequest:
            reply = [DHCPv6.Message.reply.rawValue] + transaction
            if let client { add(.clientIdentifier, client) }
            add(.serverIdentifier, serverDUID)
            add(.dnsServers, config.dnsAddress6.bytes)
            if let domain = config.domainName, let encoded = DNSName.encode(domain) {
                add(.domainList, encoded)
            }
            counts.bump(.dhcpv6Replies)
        case .solicit:
            guard let client, option(.serverIdentifier) == nil else {
                return counts.bump(.dropDhcpv6Malformed)
            }
            reply = [DHCPv6.Message.advertise.rawValue] + transaction
            add(.clientIdentifier, client)
            add(.serverIdentifier, serverDUID)
            add(.statusCode, DHCPv6.noAddressesAvailable)
            counts.bump(.dhcpv6Advertises)
        case .request, .renew, .rebind:
            guard let client else { return counts.bump(.dropDhcpv6Malformed) }
            reply = [DHCPv6.Message.reply.rawValue] + transaction
            add(.clientIdentifier, client)
            add(.serverIdentifier, serverDUID)
            for association in options where association.code == DHCPv6.Option.identityAssociation.rawValue {
                guard association.data.count >= 12 else { continue }
                var data = Array(association.data[0..<4])  // the IAID
                data += [0, 0, 0, 0, 0, 0, 0, 0]  // T1, T2
                data.appendDHCPv6Option(.statusCode, DHCPv6.noAddressesAvailable)
                add(.identityAssociation, data)
            }
            counts.bump(.dhcpv6Replies)
        case .advertise, .confirm, .reply, .release, .decline, .reconfigure, nil:
            return counts.bump(.dhcpv6Ignored)
        }
        let source = packet.source.isLinkLocal ? config.gatewayLinkLocal : config.gateway6
        sendUDPToGuest(
            from: IPEndpoint(.v6(source), WellKnownPort.dhcpv6Server.rawValue),
            to: IPEndpoint(.v6(packet.source), WellKnownPort.dhcpv6Client.rawValue),
            payload: reply)
    }
}

extension [UInt8] {
    /// Appends a DHCPv6 option: code, length, data.
    mutating func appendDHCPv6Option(_ code: DHCPv6.Option, _ data: [UInt8]) {
        appendBigEndian16(code.rawValue)
        appendBigEndian16(UInt16(truncatingIfNeeded: data.count))
        self += data
    }
}
