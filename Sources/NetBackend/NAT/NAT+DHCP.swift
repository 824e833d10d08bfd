import NICCore

/// DHCP message types (option 53).
enum DHCPMessageType: UInt8 {
    case discover = 1
    case offer, request, decline, ack, nak, release, inform
}

/// A DHCP message's options, parsed with every length checked.
struct DHCPOptions {
    var values: [UInt8: [UInt8]] = [:]

    /// Parses options from `start` to the end of `bytes`; `nil` when one runs past the end.
    init?(_ bytes: [UInt8], from start: Int) {
        var index = start
        // Each pass consumes at least one byte, so the loop ends.
        while index < bytes.count {
            let code = bytes[index]
            if code == 0 {
                index += 1
                continue
            }
            if code == 255 { return }
            guard index + 1 < bytes.count else { return nil }
            let length = Int(bytes[index + 1])
            guard index + 2 + length <= bytes.count else { return nil }
            // RFC 3396: repeated options concatenate.
            values[code, default: []] += bytes[(index + 2)..<(index + 2 + length)]
            index += 2 + length
        }
        // Running off the end without an end option is tolerated, as most servers do.
    }

    subscript(_ code: UInt8) -> [UInt8]? { values[code] }
}

extension NATEngine {
    static let dhcpLeaseCount: UInt32 = 16

    /// Serves a DHCP (BOOTP) request from the guest: `payload` is the UDP payload.
    func handleDHCP(_ payload: [UInt8], from packet: IPv4Packet) {
        guard payload.count >= 240, payload[0] == 1, payload[1] == 1, payload[2] == 6,
            payload.bigEndian32(at: 236) == 0x6382_5363
        else { return counts.bump(.dropDHCPMalformed) }
        guard let options = DHCPOptions(payload, from: 240), let code = options[53]?.first else {
            return counts.bump(.dropDHCPMalformed)
        }
        let client = payload.withUnsafeBytes { MACAddress(in: $0, at: 28) } ?? MACAddress(rawValue: 0)
        guard !client.isMulticast, client.rawValue != 0 else { return counts.bump(.dropDHCPMalformed) }
        let clientAddress = IPv4Address(rawValue: payload.bigEndian32(at: 12))
        if let server = options[54], server.count == 4, IPv4Address(in: server, at: 0) != config.gateway {
            return  // the client chose another server
        }
        let type = DHCPMessageType(rawValue: code)
        switch type {
        case .discover:
            guard let address = lease(for: client) else { return counts.bump(.dropDHCPNoLease) }
            counts.bump(.dhcpOffers)
            replyDHCP(to: payload, type: .offer, address: address, client: client)
        case .request:
            let requested = options[50].flatMap { IPv4Address(in: $0, at: 0) } ?? clientAddress
            guard let address = lease(for: client), address == requested else {
                counts.bump(.dhcpNaks)
                replyDHCP(to: payload, type: .nak, address: .any, client: client)
                return
            }
            counts.bump(.dhcpAcks)
            guestAddress = address
            replyDHCP(to: payload, type: .ack, address: address, client: client)
        case .inform:
            counts.bump(.dhcpAcks)
            replyDHCP(to: payload, type: .ack, address: .any, client: client)
        case .release, .decline:
            if leases[client] == clientAddress || type == .decline { leases[client] = nil }
        case .offer, .ack, .nak, nil:
            counts.bump(.dropDHCPMalformed)
        }
    }

    /// The client's lease, allocating the first free address of the pool if it has none.
    func lease(for client: MACAddress) -> IPv4Address? {
        if let existing = leases[client] { return existing }
        let taken = Set(leases.values)
        for offset in 0..<Self.dhcpLeaseCount {
            let candidate = IPv4Address(rawValue: config.dhcpStart.rawValue &+ offset)
            guard config.network.contains(candidate), candidate != config.network.broadcast else { break }
            if !taken.contains(candidate) {
                leases[client] = candidate
                return candidate
            }
        }
        return nil
    }

    private func replyDHCP(to request: [UInt8], type: DHCPMessageType, address: IPv4Address, client: MACAddress) {
        var reply = [UInt8](repeating: 0, count: 236)
        reply[0] = 2
        reply[1] = 1
        reply[2] = 6
        for index in 4..<8 { reply[index] = request[index] }  // xid
        for index in 10..<12 { reply[index] = request[index] }  // flags
        if type != .nak {
            for index in 12..<16 { reply[index] = request[index] }  // ciaddr
        }
        reply.storeBigEndian32(address.rawValue, at: 16)
        reply.storeBigEndian32((config.announcedTFTPServer ?? .any).rawValue, at: 20)
        for index in 28..<44 { reply[index] = request[index] }  // chaddr
        if let bootFile = config.bootFile, type != .nak {
            for (index, byte) in bootFile.utf8.prefix(127).enumerated() { reply[108 + index] = byte }
        }
        reply.appendBigEndian32(0x6382_5363)
        func option(_ code: UInt8, _ value: [UInt8]) {
            var rest = value[...]
            repeat {
                let chunk = rest.prefix(255)
                reply.append(code)
                reply.append(UInt8(chunk.count))
                reply += chunk
                rest = rest.dropFirst(chunk.count)
            } while !rest.isEmpty
        }
        option(53, [type.rawValue])
        option(54, config.gateway.bytes)
        if type != .nak {
            if type != .ack || address != .any {
                var lease: [UInt8] = []
                lease.appendBigEndian32(config.leaseTime)
                option(51, lease)
                var renewal: [UInt8] = []
                renewal.appendBigEndian32(config.leaseTime / 2)
                option(58, renewal)
                var rebinding: [UInt8] = []
                rebinding.appendBigEndian32(config.leaseTime / 8 * 7)
                option(59, rebinding)
            }
            option(1, config.network.netmask.bytes)
            option(3, config.gateway.bytes)
            option(6, config.dnsAddress.bytes)
            if let domain = config.domainName { option(15, Array(domain.utf8)) }
            var mtu: [UInt8] = []
            mtu.appendBigEndian16(UInt16(truncatingIfNeeded: config.mtu))
            option(26, mtu)
            if let server = config.announcedTFTPServer { option(66, Array(server.description.utf8)) }
            if let bootFile = config.bootFile { option(67, Array(bootFile.utf8)) }
        }
        reply.append(255)
        if reply.count < 300 { reply += [UInt8](repeating: 0, count: 300 - reply.count) }

        let ciaddr = IPv4Address(rawValue: request.bigEndian32(at: 12))
        let broadcast =
            type == .nak || request.bigEndian16(at: 10) & 0x8000 != 0
            || address == .any && ciaddr == .any
        let destination = broadcast ? IPv4Address.broadcast : (ciaddr != .any ? ciaddr : address)
        sendUDPToGuest(
            from: IPv4Endpoint(config.gateway, WellKnownPort.dhcpServer.rawValue),
            to: IPv4Endpoint(destination, WellKnownPort.dhcpClient.rawValue), payload: reply,
            mac: broadcast ? .broadcast : client)
    }
}
