import Glibc
import NICCore

/// A UDP flow: one guest endpoint talking to one (guest-visible) remote endpoint.
struct UDPFlowKey: Hashable {
    var guest: IPEndpoint
    var remote: IPEndpoint
}

struct UDPFlow {
    /// A connected socket the flow owns, or a forward's listening socket it shares.
    var fd: Int32
    var deadline: UInt64
    var idle: UInt64
    /// The last datagram's IP header and first 8 payload bytes, for ICMP errors about it.
    var lastPacket: IPPacket?
    /// For a flow a port forward created: the host peer replies go to through the shared socket.
    var forwardPeer: IPEndpoint?
    /// For a flow to the DNS proxy: which configured resolver it uses, and the last query (resent to the next
    /// resolver when this one refuses).
    var resolver: Int?
    var lastQuery: [UInt8] = []
    /// When the resolver must have answered the last query before the flow moves to the next one.
    var answerDeadline: UInt64?
}

extension NATEngine {
    /// Handles a UDP datagram from the guest: DHCP, DHCPv6 and TFTP here, everything else through a host socket.
    func handleUDP(_ packet: IPPacket, checksummed: Bool) {
        let segment = packet.payload
        guard segment.count >= 8 else { return counts.bump(.dropUDPMalformed) }
        let length = Int(segment.bigEndian16(at: 4))
        guard length >= 8, length <= segment.count else { return counts.bump(.dropUDPMalformed) }
        let datagram = length == segment.count ? segment : Array(segment[0..<length])
        // A zero checksum means none over IPv4; over IPv6 the checksum is mandatory (RFC 8200 8.1).
        if datagram.bigEndian16(at: 6) != 0 || packet.isIPv6, !checksummed {
            let sum = transportChecksum(
                source: packet.source, destination: packet.destination, proto: IPProtocolNumber.udp, segment: datagram)
            guard sum == 0, datagram.bigEndian16(at: 6) != 0 else { return counts.bump(.dropUDPChecksum) }
        }
        let sourcePort = datagram.bigEndian16(at: 0)
        let destinationPort = datagram.bigEndian16(at: 2)
        let payload = Array(datagram[8...])
        switch packet {
        case .v4(let packet4):
            if destinationPort == WellKnownPort.dhcpServer.rawValue, sourcePort == WellKnownPort.dhcpClient.rawValue,
                packet4.destination == .broadcast || packet4.destination == config.gateway
            {
                return handleDHCP(payload, from: packet4)
            }
            guard packet4.source != .any else { return counts.bump(.dropIPSourceSpoofed) }
            let guestEndpoint = IPv4Endpoint(packet4.source, sourcePort)
            let destinationEndpoint = IPv4Endpoint(packet4.destination, destinationPort)
            if isTFTP(destinationEndpoint, from: guestEndpoint) {
                return handleTFTP(payload, from: guestEndpoint, to: destinationEndpoint)
            }
        case .v6(let packet6):
            if destinationPort == WellKnownPort.dhcpv6Server.rawValue, sourcePort == WellKnownPort.dhcpv6Client.rawValue
            {
                return handleDHCPv6(payload, from: packet6)
            }
            guard isGuestPrefixAddress(packet6.source) else { return counts.bump(.dropIpv6Source) }
        }
        let broadcast = isGuestBroadcast(packet.destination)
        guard broadcast || isUnicast(packet.destination) else { return counts.bump(.dropIPDestination) }
        let key = UDPFlowKey(
            guest: IPEndpoint(packet.source, sourcePort), remote: IPEndpoint(packet.destination, destinationPort))
        if udpFlows[key] == nil {
            let target: IPEndpoint
            let decision =
                broadcast
                ? routeBroadcast(port: destinationPort)
                : route(to: packet.destination, port: destinationPort, proto: IPProtocolNumber.udp)
            switch decision {
            case .host(let endpoint): target = endpoint
            case .deny(let counter):
                counts.bump(counter)
                let closed = counter == .dropPortClosed || counter == .dnsNoServer
                if counter != .dropIPDestination { sendUnreachable(closed ? .port : .prohibited, about: packet) }
                return
            }
            guard udpFlows.count < config.limits.udpFlows else { return counts.bump(.dropUDPFlowLimit) }
            let dns = packet.destination == .v4(config.dnsAddress) || packet.destination == .v6(config.dnsAddress6)
            let fd = HostSocket.open(type: HostSocket.datagram, ipv6: target.address.isIPv6)
            guard fd >= 0 else { return counts.bump(.dropUDPSocket) }
            if !dns { prepareFlowSocket(fd, guest: key.guest, broadcast: broadcast) }
            guard HostSocket.connect(fd, to: target) == 0 else {
                close(fd)
                counts.bump(.dropUDPSocket)
                sendUnreachable(.host, about: packet)
                return
            }
            guard register(fd, .udp(key), events: EventLoop.readable) else { return counts.bump(.dropUDPSocket) }
            let idle = nanoseconds(dns ? config.timeouts.dnsIdle : config.timeouts.udpIdle)
            udpFlows[key] = UDPFlow(fd: fd, deadline: 0, idle: idle, resolver: dns ? 0 : nil)
        }
        guard var flow = udpFlows[key] else { return }
        flow.lastPacket = packet.truncated(8)
        flow.deadline = now &+ flow.idle
        if flow.resolver != nil {
            flow.lastQuery = payload
            if flow.answerDeadline == nil, let deadline = answerDeadline(flow) {
                flow.answerDeadline = deadline
                arm(deadline)
            }
        }
        udpFlows[key] = flow
        arm(flow.deadline)
        if flow.resolver == nil, flow.forwardPeer == nil { touchBroadcastPort(key, fd: flow.fd) }
        let sent: Int
        if let peer = flow.forwardPeer {
            sent = HostSocket.send(flow.fd, payload, to: peer)
        } else {
            sent = payload.withUnsafeBytes { HostSocket.send(flow.fd, $0) }
        }
        if sent == -Int(ECONNREFUSED) {
            if failOver(key) { return }
            counts.bump(.dropPortClosed)
            sendUnreachable(.port, about: packet, from: packet.destination)
        } else if sent < 0 {
            counts.bump(.dropUDPSend)
        }
    }

    /// Reads what a flow's host socket received and passes it to the guest.
    func udpReadable(_ key: UDPFlowKey) {
        guard var flow = udpFlows[key] else { return }
        var failedOver = false
        readDatagrams(from: flow.fd) { count, _, bytes in
            if let reason = Self.unreachableReason(count) {
                failedOver = failOver(key)
                if failedOver { return false }
                counts.bump(reason == .port ? .dropPortClosed : .dropUDPSocket)
                if let last = flow.lastPacket {
                    sendUnreachable(reason, about: last, from: reason == .port ? key.remote.address : nil)
                }
                return true
            }
            guard count >= 0 else { return false }
            sendUDPToGuest(from: key.remote, to: key.guest, payload: Array(bytes))
            flow.deadline = now &+ flow.idle
            flow.answerDeadline = nil
            return true
        }
        if !failedOver { udpFlows[key] = flow }
    }

    /// Reads up to 64 datagrams from `fd` into ``scratch`` and hands `body` each result, until it returns `false`:
    /// the count or `-errno`, the sender, and the bytes read.
    func readDatagrams(from fd: Int32, _ body: (Int, IPEndpoint?, ArraySlice<UInt8>) -> Bool) {
        if scratch.count < 65_536 { scratch = [UInt8](repeating: 0, count: 65_536) }
        for _ in 0..<64 {
            let (count, sender) = scratch.withUnsafeMutableBytes { HostSocket.receiveFrom(fd, into: $0) }
            guard body(count, sender, scratch[0..<min(max(count, 0), scratch.count)]) else { return }
        }
    }

    /// Moves a DNS flow whose resolver refused to the next configured resolver and resends the last query there.
    /// Returns `false` when there is no next resolver (or the move failed and the flow is gone).
    func failOver(_ key: UDPFlowKey) -> Bool {
        guard var flow = udpFlows[key], let current = flow.resolver, current + 1 < config.dnsServers.count else {
            return false
        }
        release(flow.fd)
        udpFlows[key] = nil
        let next = config.dnsServers[current + 1]
        let fd = HostSocket.open(type: HostSocket.datagram, ipv6: next.address.isIPv6)
        guard fd >= 0, HostSocket.connect(fd, to: next) == 0 else {
            if fd >= 0 { close(fd) }
            counts.bump(.dropUDPSocket)
            return false
        }
        guard register(fd, .udp(key), events: EventLoop.readable) else {
            counts.bump(.dropUDPSocket)
            return false
        }
        flow.fd = fd
        flow.resolver = current + 1
        flow.answerDeadline = answerDeadline(flow)
        if let deadline = flow.answerDeadline { arm(deadline) }
        udpFlows[key] = flow
        counts.bump(.dnsFailovers)
        _ = flow.lastQuery.withUnsafeBytes { HostSocket.send(fd, $0) }
        return true
    }

    /// The destination-unreachable reason for a socket error (`-errno`), or `nil` when it is not one.
    static func unreachableReason(_ result: Int) -> Unreachable? {
        switch -result {
        case Int(ECONNREFUSED): return .port
        case Int(EHOSTUNREACH): return .host
        case Int(ENETUNREACH): return .network
        case Int(EMSGSIZE): return .tooBig
        default: return nil
        }
    }

    func expireUDP() -> UInt64? {
        var next: UInt64? = nil
        for (key, flow) in udpFlows {
            if flow.deadline <= now {
                if flow.forwardPeer == nil { release(flow.fd) }
                udpFlows[key] = nil
                counts.bump(.udpFlowsExpired)
                continue
            }
            next = min(next ?? flow.deadline, flow.deadline)
            guard let answer = flow.answerDeadline else { continue }
            if answer > now {
                next = min(next ?? answer, answer)
                continue
            }
            // The resolver stayed silent: the next one gets the query (failOver arms its own deadline).
            counts.bump(.dnsResolverTimeouts)
            if !failOver(key), var stale = udpFlows[key] {
                stale.answerDeadline = nil
                udpFlows[key] = stale
            }
            if let moved = udpFlows[key]?.answerDeadline { next = min(next ?? moved, moved) }
        }
        return next
    }

    /// When a DNS flow's resolver must answer by, or `nil` when no further resolver could be tried.
    private func answerDeadline(_ flow: UDPFlow) -> UInt64? {
        guard let current = flow.resolver, current + 1 < config.dnsServers.count else { return nil }
        return now &+ max(1_000_000, nanoseconds(config.timeouts.dnsRetry))
    }

    /// Sends a UDP datagram to the guest over IPv4.
    func sendUDPToGuest(
        from source: IPv4Endpoint, to destination: IPv4Endpoint, payload: [UInt8], mac: MACAddress? = nil
    ) {
        sendUDPToGuest(from: IPEndpoint(source), to: IPEndpoint(destination), payload: payload, mac: mac)
    }

    /// Sends a UDP datagram to the guest, over the two endpoints' family.
    func sendUDPToGuest(
        from source: IPEndpoint, to destination: IPEndpoint, payload: [UInt8], mac: MACAddress? = nil
    ) {
        guard payload.count <= 65_507 else { return counts.bump(.dropUDPMalformed) }
        let datagram = TransportSegment.udp(from: source, to: destination, payload: payload)
        sendToGuest(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.udp, payload: datagram,
            mac: mac)
    }
}
