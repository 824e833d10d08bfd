import NICCore

/// DHCPv6 constants (RFC 8415).
enum DHCPv6 {
    static let clientPort: UInt16 = 546
    static let serverPort: UInt16 = 547

    enum Message {
        static let solicit: UInt8 = 1
        static let advertise: UInt8 = 2
        static let request: UInt8 = 3
        static let renew: UInt8 = 5
        static let rebind: UInt8 = 6
        static let reply: UInt8 = 7
        static let informationRequest: UInt8 = 11
    }

    enum Option {
        static let clientIdentifier: UInt16 = 1
        static let serverIdentifier: UInt16 = 2
        static let identityAssociation: UInt16 = 3
        static let statusCode: UInt16 = 13
        static let dnsServers: UInt16 = 23
        static let domainList: UInt16 = 24
        static let informationRefreshTime: UInt16 = 32
    }

    /// Status code NoAddrsAvail.
    static let noAddressesAvailable: UInt16 = 2
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
        func option(_ code: UInt16) -> [UInt8]? { options.first { $0.code == code }?.data }
        if let server = option(DHCPv6.Option.serverIdentifier), server != serverDUID {
            return counts.bump(.dhcpv6Ignored)
        }
        let client = option(DHCPv6.Option.clientIdentifier)
        var reply: [UInt8] = []
        func add(_ code: UInt16, _ data: [UInt8]) {
            reply.appendBigEndian16(code)
            reply.appendBigEndian16(UInt16(truncatingIfNeeded: data.count))
            reply += data
        }
        func status(_ code: UInt16, _ text: String) -> [UInt8] {
            var data: [UInt8] = []
            data.appendBigEndian16(code)
            return data + Array(text.utf8)
        }
        let transaction = Array(payload[1..<4])
        switch payload[0] {
        case DHCPv6.Message.informationRequest:
            reply = [DHCPv6.Message.reply] + transaction
            if let client { add(DHCPv6.Option.clientIdentifier, client) }
            add(DHCPv6.Option.serverIdentifier, serverDUID)
            add(DHCPv6.Option.dnsServers, config.dnsAddress6.bytes)
            if let domain = config.domainName, let encoded = DNSName.encode(domain) {
                add(DHCPv6.Option.domainList, encoded)
            }
            counts.bump(.dhcpv6Replies)
        case DHCPv6.Message.solicit:
            guard let client, option(DHCPv6.Option.serverIdentifier) == nil else {
                return counts.bump(.dropDhcpv6Malformed)
            }
            reply = [DHCPv6.Message.advertise] + transaction
            add(DHCPv6.Option.clientIdentifier, client)
            add(DHCPv6.Option.serverIdentifier, serverDUID)
            add(DHCPv6.Option.statusCode, status(DHCPv6.noAddressesAvailable, "addresses come from SLAAC"))
            counts.bump(.dhcpv6Advertises)
        case DHCPv6.Message.request, DHCPv6.Message.renew, DHCPv6.Message.rebind:
            guard let client else { return counts.bump(.dropDhcpv6Malformed) }
            reply = [DHCPv6.Message.reply] + transaction
            add(DHCPv6.Option.clientIdentifier, client)
            add(DHCPv6.Option.serverIdentifier, serverDUID)
            for association in options where association.code == DHCPv6.Option.identityAssociation {
                guard association.data.count >= 12 else { continue }
                var data = Array(association.data[0..<4])  // the IAID
                data += [0, 0, 0, 0, 0, 0, 0, 0]  // T1, T2
                data.appendBigEndian16(DHCPv6.Option.statusCode)
                let text = status(DHCPv6.noAddressesAvailable, "addresses come from SLAAC")
                data.appendBigEndian16(UInt16(text.count))
                data += text
                add(DHCPv6.Option.identityAssociation, data)
            }
            counts.bump(.dhcpv6Replies)
        default:
            return counts.bump(.dhcpv6Ignored)
        }
        let source = packet.source.isLinkLocal ? config.gatewayLinkLocal : config.gateway6
        sendUDPToGuest(
            from: IPEndpoint(.v6(source), DHCPv6.serverPort), to: IPEndpoint(.v6(packet.source), DHCPv6.clientPort),
            payload: reply)
    }
}
