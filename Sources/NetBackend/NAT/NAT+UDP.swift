import Glibc
import NICCore

/// A UDP flow: one guest endpoint talking to one (guest-visible) remote endpoint.
struct UDPFlowKey: Hashable {
    var guest: IPv4Endpoint
    var remote: IPv4Endpoint
}

struct UDPFlow {
    /// A connected socket the flow owns, or a forward's listening socket it shares.
    var fd: Int32
    var deadline: UInt64
    var idle: UInt64
    /// The last datagram's IP header and first 8 payload bytes, for ICMP errors about it.
    var lastPacket: IPv4Packet?
    /// For a flow a port forward created: the host peer replies go to through the shared socket.
    var forwardPeer: IPv4Endpoint?
    /// For a flow to the DNS proxy: which configured resolver it uses, and the last query (resent to the next
    /// resolver when this one refuses).
    var resolver: Int?
    var lastQuery: [UInt8] = []
}

extension NATEngine {
    /// Handles a UDP datagram from the guest: DHCP here, everything else through a host socket.
    func handleUDP(_ packet: IPv4Packet, checksummed: Bool) {
        let segment = packet.payload
        guard segment.count >= 8 else { return counts.bump(.dropUDPMalformed) }
        let length = Int(segment.u16(4))
        guard length >= 8, length <= segment.count else { return counts.bump(.dropUDPMalformed) }
        let datagram = length == segment.count ? segment : Array(segment[0..<length])
        if datagram.u16(6) != 0, !checksummed {
            let sum = transportChecksum(
                source: packet.source, destination: packet.destination, proto: IPProtocolNumber.udp, segment: datagram)
            guard sum == 0 else { return counts.bump(.dropUDPChecksum) }
        }
        let sourcePort = datagram.u16(0)
        let destinationPort = datagram.u16(2)
        let payload = Array(datagram[8...])
        if destinationPort == 67, sourcePort == 68,
            packet.destination == .broadcast || packet.destination == config.gateway
        {
            return handleDHCP(payload, from: packet)
        }
        guard packet.source != .any else { return counts.bump(.dropIPSourceSpoofed) }
        let guestEndpoint = IPv4Endpoint(packet.source, sourcePort)
        let destinationEndpoint = IPv4Endpoint(packet.destination, destinationPort)
        if isTFTP(destinationEndpoint, from: guestEndpoint) {
            return handleTFTP(payload, from: guestEndpoint, to: destinationEndpoint)
        }
        let key = UDPFlowKey(
            guest: IPv4Endpoint(packet.source, sourcePort), remote: IPv4Endpoint(packet.destination, destinationPort))
        if udpFlows[key] == nil {
            let target: IPv4Endpoint
            switch route(to: packet.destination, port: destinationPort, proto: IPProtocolNumber.udp) {
            case .host(let endpoint): target = endpoint
            case .deny(let counter):
                counts.bump(counter)
                let code: UInt8 = counter == .dropPortClosed || counter == .dnsNoServer ? 3 : 13
                if counter != .dropIPDestination { sendICMPError(type: 3, code: code, about: packet) }
                return
            }
            guard udpFlows.count < config.limits.udpFlows else { return counts.bump(.dropUDPFlowLimit) }
            let fd = HostSocket.open(type: HostSocket.datagram)
            guard fd >= 0 else { return counts.bump(.dropUDPSocket) }
            guard HostSocket.connect(fd, to: target) == 0 else {
                close(fd)
                counts.bump(.dropUDPSocket)
                sendICMPError(type: 3, code: 1, about: packet)
                return
            }
            guard register(fd, .udp(key), events: NATPoller.readable) else { return counts.bump(.dropUDPSocket) }
            let dns = packet.destination == config.dnsAddress
            let idle = nanoseconds(dns ? config.timeouts.dnsIdle : config.timeouts.udpIdle)
            udpFlows[key] = UDPFlow(fd: fd, deadline: 0, idle: idle, resolver: dns ? 0 : nil)
        }
        guard var flow = udpFlows[key] else { return }
        var head = packet
        head.payload = Array(datagram.prefix(8))
        flow.lastPacket = head
        flow.deadline = now &+ flow.idle
        if flow.resolver != nil { flow.lastQuery = payload }
        udpFlows[key] = flow
        arm(flow.deadline)
        let sent: Int
        if let peer = flow.forwardPeer {
            sent = HostSocket.send(flow.fd, payload, to: peer)
        } else {
            sent = payload.withUnsafeBytes { HostSocket.send(flow.fd, $0) }
        }
        if sent == -Int(ECONNREFUSED) {
            if failOver(key) { return }
            counts.bump(.dropPortClosed)
            sendICMPError(type: 3, code: 3, about: packet, from: packet.destination)
        } else if sent < 0 {
            counts.bump(.dropUDPSend)
        }
    }

    /// Reads what a flow's host socket received and passes it to the guest.
    func udpReadable(_ key: UDPFlowKey) {
        guard var flow = udpFlows[key] else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<64 {
            let (count, _) = buffer.withUnsafeMutableBytes { HostSocket.receive(flow.fd, into: $0) }
            if let code = Self.unreachableCode(count) {
                if failOver(key) { return }
                counts.bump(code == 3 ? .dropPortClosed : .dropUDPSocket)
                if let last = flow.lastPacket {
                    sendICMPError(type: 3, code: code, about: last, from: code == 3 ? key.remote.address : nil)
                }
                continue
            }
            guard count >= 0 else { break }
            sendUDPToGuest(from: key.remote, to: key.guest, payload: Array(buffer[0..<count]))
            flow.deadline = now &+ flow.idle
        }
        udpFlows[key] = flow
    }

    /// Moves a DNS flow whose resolver refused to the next configured resolver and resends the last query there.
    /// Returns `false` when there is no next resolver (or the move failed and the flow is gone).
    func failOver(_ key: UDPFlowKey) -> Bool {
        guard var flow = udpFlows[key], let current = flow.resolver, current + 1 < config.dnsServers.count else {
            return false
        }
        release(flow.fd)
        udpFlows[key] = nil
        let fd = HostSocket.open(type: HostSocket.datagram)
        guard fd >= 0, HostSocket.connect(fd, to: config.dnsServers[current + 1]) == 0 else {
            if fd >= 0 { close(fd) }
            counts.bump(.dropUDPSocket)
            return false
        }
        guard register(fd, .udp(key), events: NATPoller.readable) else {
            counts.bump(.dropUDPSocket)
            return false
        }
        flow.fd = fd
        flow.resolver = current + 1
        udpFlows[key] = flow
        counts.bump(.dnsFailovers)
        _ = flow.lastQuery.withUnsafeBytes { HostSocket.send(fd, $0) }
        return true
    }

    /// The ICMP destination-unreachable code for a socket error (`-errno`), or `nil` when it is not one.
    static func unreachableCode(_ result: Int) -> UInt8? {
        switch -result {
        case Int(ECONNREFUSED): return 3
        case Int(EHOSTUNREACH): return 1
        case Int(ENETUNREACH): return 0
        case Int(EMSGSIZE): return 4
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
            } else {
                next = min(next ?? flow.deadline, flow.deadline)
            }
        }
        return next
    }

    /// Sends a UDP datagram to the guest.
    func sendUDPToGuest(
        from source: IPv4Endpoint, to destination: IPv4Endpoint, payload: [UInt8], mac: MACAddress? = nil
    ) {
        guard payload.count <= 65_507 else { return counts.bump(.dropUDPMalformed) }
        let datagram = TransportSegment.udp(from: source, to: destination, payload: payload)
        sendToGuest(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.udp, payload: datagram,
            mac: mac)
    }
}
