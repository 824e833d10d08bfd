import Glibc
import NICCore

/// A port forward's listening socket.
struct ForwardListener {
    var rule: PortForwardRule
    var fd: Int32
}

extension NATEngine {
    /// The lowest port an unprivileged process may bind (`net.ipv4.ip_unprivileged_port_start`, 1024 by default).
    static var unprivilegedPortStart: Int {
        guard let text = readTextFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
            let value = Int(text.trimmingASCIIWhitespace)
        else { return 1024 }
        return value
    }

    /// Opens the listening socket for `rule`; throws, changing nothing, on any failure.
    func addForward(_ rule: PortForwardRule) throws(NATError) {
        guard forwards[rule.name] == nil else { throw .ruleName(rule.name, reason: "a rule with this name exists") }
        if Int(rule.hostPort) < Self.unprivilegedPortStart, !isPrivileged {
            throw .configuration(
                "rule '\(rule.name)': host port \(rule.hostPort) is below \(Self.unprivilegedPortStart) and needs"
                    + " privilege (CAP_NET_BIND_SERVICE)")
        }
        let type = rule.transport == .tcp ? HostSocket.stream : HostSocket.datagram
        if rule.isIPv6, !config.ipv6 {
            throw .configuration("rule '\(rule.name)' forwards IPv6, and IPv6 is off")
        }
        if let guest = rule.guestAddress, case .v6(let address) = guest, !isGuestPrefixAddress(address) {
            throw .configuration("rule '\(rule.name)': guest address \(address) is not in \(config.prefix6)")
        }
        let fd = HostSocket.open(type: type, ipv6: rule.isIPv6)
        guard fd >= 0 else { throw .system("rule '\(rule.name)': socket", errno: -fd) }
        if rule.transport == .tcp { HostSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
        let endpoint = IPEndpoint(rule.hostAddress ?? (rule.isIPv6 ? .v6(.any) : .v4(.any)), rule.hostPort)
        let bound = HostSocket.bind(fd, to: endpoint)
        guard bound == 0 else {
            close(fd)
            if bound == EADDRINUSE {
                throw .configuration("rule '\(rule.name)': host port \(endpoint) is in use")
            }
            throw .system("rule '\(rule.name)': bind \(endpoint)", errno: bound)
        }
        if rule.transport == .tcp, listen(fd, 128) != 0 {
            let code = errno
            close(fd)
            throw .system("rule '\(rule.name)': listen \(endpoint)", errno: code)
        }
        guard register(fd, .listener(rule.name), events: EventLoop.readable) else {
            throw .system("rule '\(rule.name)': epoll_ctl", errno: errno)
        }
        forwards[rule.name] = ForwardListener(rule: rule, fd: fd)
    }

    /// Closes the listening socket of the rule named `name`.
    func removeForward(named name: String) throws(NATError) {
        guard let listener = forwards.removeValue(forKey: name) else {
            throw .ruleName(name, reason: "no rule has this name")
        }
        for (key, flow) in udpFlows where flow.fd == listener.fd { udpFlows[key] = nil }
        release(listener.fd)
    }

    /// The address a host peer appears as to the guest: the gateway for host loopback, the peer itself otherwise.
    func guestVisible(_ peer: IPEndpoint) -> IPEndpoint {
        switch peer.address {
        case .v4(let address) where address.isLoopback: return IPEndpoint(.v4(config.gateway), peer.port)
        case .v6(let address) where address.isLoopback: return IPEndpoint(.v6(config.gateway6), peer.port)
        default: return peer
        }
    }

    /// The guest address a forward delivers to: the rule's, or the guest's own of the rule's IP version.
    func forwardTarget(_ rule: PortForwardRule) -> IPAddress? {
        if let address = rule.guestAddress { return address }
        if rule.isIPv6 { return guestAddress6.map { .v6($0) } }
        return defaultGuestAddress.map { .v4($0) }
    }

    func listenerReadable(_ name: String) {
        guard let listener = forwards[name] else { return }
        switch listener.rule.transport {
        case .tcp: acceptForwarded(listener)
        case .udp: receiveForwarded(listener)
        }
    }

    private func acceptForwarded(_ listener: ForwardListener) {
        for _ in 0..<16 {
            let fd = HostSocket.accept(listener.fd)
            guard fd >= 0 else { return }
            counts.bump(.forwardAccepted)
            guard let guest = forwardTarget(listener.rule), guestMAC != nil, tcpFlows.count < config.limits.tcpFlows
            else {
                counts.bump(.forwardErrors)
                HostSocket.abort(fd)
                close(fd)
                continue
            }
            let peer = HostSocket.peerEndpoint(fd)
            let key = TCPFlowKey(
                guest: IPEndpoint(guest, listener.rule.guestPort),
                remote: guestVisible(peer ?? IPEndpoint(.v4(.any), 0)))
            guard peer != nil, key.guest.address.isIPv6 == key.remote.address.isIPv6, tcpFlows[key] == nil else {
                counts.bump(.forwardErrors)
                close(fd)
                continue
            }
            HostSocket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            // Nothing is read from the host until the guest answers.
            guard register(fd, .tcp(key), events: 0) else {
                counts.bump(.forwardErrors)
                continue
            }
            let connection = NATTCPConnection(
                key, socket: NATHostTCPSocket(fd, engine: self), state: .synSent,
                initialSequence: UInt32.random(in: 0...UInt32.max), host: self, config: config)
            tcpFlows[key] = connection
            connection.connect()
        }
    }

    private func receiveForwarded(_ listener: ForwardListener) {
        readDatagrams(from: listener.fd) { count, sender, bytes in
            guard count >= 0, let sender else { return false }
            let remote = guestVisible(sender)
            guard let guest = forwardTarget(listener.rule), guest.isIPv6 == remote.address.isIPv6 else {
                counts.bump(.forwardErrors)
                return true
            }
            let key = UDPFlowKey(guest: IPEndpoint(guest, listener.rule.guestPort), remote: remote)
            if udpFlows[key] == nil {
                guard udpFlows.count < config.limits.udpFlows else {
                    counts.bump(.dropUDPFlowLimit)
                    return true
                }
                counts.bump(.forwardAccepted)
                udpFlows[key] = UDPFlow(
                    fd: listener.fd, deadline: 0, idle: nanoseconds(config.timeouts.udpIdle), forwardPeer: sender)
            }
            udpFlows[key]?.deadline = now &+ nanoseconds(config.timeouts.udpIdle)
            arm(now &+ nanoseconds(config.timeouts.udpIdle))
            sendUDPToGuest(from: key.remote, to: key.guest, payload: Array(bytes))
            return true
        }
    }
}
