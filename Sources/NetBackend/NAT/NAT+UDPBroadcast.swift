import CNetShims
import Glibc
import NICCore

/// What lets host UDP broadcasts reach one guest port (VirtualBox's documented NAT limit: the guest receives UDP
/// broadcasts only on ports it has sent from recently).
///
/// When the guest sends UDP over IPv4 from port P through a host socket (not to the DNS proxy), the NAT's flow
/// sockets for P all use one host port H (each is connected to its own peer, so its replies stay its own), and an
/// unconnected socket bound to the wildcard address on H with `SO_BROADCAST` receives what no flow socket takes:
///
/// - a datagram sent to a broadcast address (255.255.255.255, or the directed broadcast of a host interface, lo's
///   127.255.255.255 included) reaches the guest as a broadcast frame (`ff:ff:ff:ff:ff:ff`) to port P, addressed to
///   255.255.255.255 when the host saw a limited broadcast and to the guest network's directed broadcast otherwise;
/// - a unicast answer to a broadcast the guest sent from P (a sender whose port is that broadcast's destination port)
///   reaches the guest's address and port P, as any flow's replies do;
/// - anything else is unsolicited and dropped (`drop_udp_unsolicited`).
///
/// P stays open for ``NATTimeouts/udpIdle`` (180 s, the UDP flow expiry) after the guest last sent from it; then the
/// socket closes (`udp_broadcast_ports_expired`). A broadcast to a port the guest has not sent from never reaches the
/// NAT at all: the kernel hands it to no socket of ours, so no counter can see it.
///
/// A sender on host loopback or inside the guest network appears to the guest as the gateway. In `restrict` mode only
/// senders in ``NATConfiguration/allowedDestinations`` (and host loopback with `localhostReachable`) get through.
struct UDPBroadcastPort {
    var fd: Int32
    /// The host port the guest port's flows use.
    var hostPort: UInt16
    var deadline: UInt64
    /// Destination ports of broadcasts the guest sent from this port, and until when answers from them are welcome.
    var answerPorts: [UInt16: UInt64] = [:]

    /// How many broadcast destination ports one guest port remembers answers for.
    static let answerPortLimit = 16
}

extension NATEngine {
    /// Whether a guest datagram to `destination` is a broadcast on its network: 255.255.255.255 or the network's
    /// directed broadcast.
    func isGuestBroadcast(_ destination: IPAddress) -> Bool {
        guard case .v4(let address) = destination else { return false }
        return address == .broadcast || address == config.network.broadcast
    }

    /// Where a broadcast from the guest goes on the host: ``NATConfiguration/hostBroadcast`` (off when `nil`), host
    /// loopback only with `localhostReachable` or an allowed prefix listing it, and in `restrict` mode only when an
    /// allowed prefix lists it.
    func routeBroadcast(port: UInt16) -> Route {
        guard let target = config.hostBroadcast else { return .deny(.dropIPDestination) }
        let allowed = config.allowedDestinations.contains { $0.contains(target) }
        if target.isLoopback, !allowed, !config.localhostReachable { return .deny(.dropPolicyLoopback) }
        if config.restrict, !allowed { return .deny(.dropPolicyDenied) }
        return .host(IPEndpoint(.v4(target), port))
    }

    /// Prepares a new flow socket of `guest` before it connects: it may share its host port with the guest port's
    /// other flows, and a socket for a broadcast may send one.
    func prepareFlowSocket(_ fd: Int32, guest: IPEndpoint, broadcast: Bool) {
        guard case .v4(let address) = guest.address else { return }
        HostSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if broadcast { HostSocket.setOption(fd, SOL_SOCKET, SO_BROADCAST, 1) }
        // The guest port already has a host port: this flow uses it too (endpoint-independent mapping), or, when the
        // bind fails, a port of its own that only its peer reaches.
        if let port = udpBroadcastPorts[IPv4Endpoint(address, guest.port)]?.hostPort {
            _ = HostSocket.bind(fd, to: IPv4Endpoint(.any, port))
        }
    }

    /// Notes that the guest sent from `key.guest` through the flow socket `fd`: the guest port stays open to host
    /// broadcasts for the UDP idle time; the first time, the broadcast socket is opened on the flow socket's port.
    func touchBroadcastPort(_ key: UDPFlowKey, fd: Int32) {
        guard case .v4(let address) = key.guest.address else { return }
        let guest = IPv4Endpoint(address, key.guest.port)
        let idle = nanoseconds(config.timeouts.udpIdle)
        let deadline = now &+ idle
        if var entry = udpBroadcastPorts[guest] {
            entry.deadline = deadline
            noteBroadcastQuery(key, deadline: deadline, in: &entry)
            udpBroadcastPorts[guest] = entry
            arm(deadline)
            return
        }
        guard udpBroadcastPorts.count < config.limits.udpFlows else { return counts.bump(.dropUDPBroadcastLimit) }
        guard let local = HostSocket.localAddress(fd), local.port != 0 else {
            return counts.bump(.dropUDPBroadcastSocket)
        }
        let listener = HostSocket.open(type: HostSocket.datagram)
        guard listener >= 0 else { return counts.bump(.dropUDPBroadcastSocket) }
        HostSocket.setOption(listener, SOL_SOCKET, SO_REUSEADDR, 1)
        HostSocket.setOption(listener, SOL_SOCKET, SO_BROADCAST, 1)
        HostSocket.setOption(listener, Int32(IPPROTO_IP), IP_PKTINFO, 1)
        guard HostSocket.bind(listener, to: IPv4Endpoint(.any, local.port)) == 0 else {
            close(listener)
            return counts.bump(.dropUDPBroadcastSocket)
        }
        guard register(listener, .udpBroadcast(guest), events: EventLoop.readable) else {
            return counts.bump(.dropUDPBroadcastSocket)
        }
        var entry = UDPBroadcastPort(fd: listener, hostPort: local.port, deadline: deadline)
        noteBroadcastQuery(key, deadline: deadline, in: &entry)
        udpBroadcastPorts[guest] = entry
        arm(deadline)
    }

    /// Remembers the destination port of a broadcast the guest sent, so that unicast answers from it get through.
    private func noteBroadcastQuery(_ key: UDPFlowKey, deadline: UInt64, in entry: inout UDPBroadcastPort) {
        guard isGuestBroadcast(key.remote.address) else { return }
        let port = key.remote.port
        if entry.answerPorts[port] == nil, entry.answerPorts.count >= UDPBroadcastPort.answerPortLimit,
            let oldest = entry.answerPorts.min(by: { $0.value < $1.value })?.key
        {
            entry.answerPorts[oldest] = nil
        }
        entry.answerPorts[port] = deadline
    }

    /// Reads what a guest port's broadcast socket received: broadcasts and answers to the guest's broadcasts go to the
    /// guest, the rest is counted and dropped. Bounded per call.
    func udpBroadcastReadable(_ guest: IPv4Endpoint) {
        guard let entry = udpBroadcastPorts[guest] else { return }
        if scratch.count < 65_536 { scratch = [UInt8](repeating: 0, count: 65_536) }
        for _ in 0..<64 {
            var source: UInt32 = 0
            var sourcePort: UInt16 = 0
            var destination: UInt32 = 0
            let count = scratch.withUnsafeMutableBytes { buffer in
                Int(
                    cnet_recv_ipv4_destination(
                        entry.fd, buffer.baseAddress, buffer.count, &source, &sourcePort, &destination))
            }
            guard count >= 0 else { break }
            guard count <= scratch.count else { break }
            let sender = IPv4Address(rawValue: source)
            let target = IPv4Address(rawValue: destination)
            guard entry.deadline > now else {
                counts.bump(.dropUDPBroadcastIdle)
                continue
            }
            guard isAllowedBroadcastSender(sender) else {
                counts.bump(.dropPolicyDenied)
                continue
            }
            let visible = IPv4Endpoint(guestVisibleSender(sender), sourcePort)
            // Copied only for a datagram that goes to the guest.
            var payload: [UInt8] { Array(scratch[0..<count]) }
            if isHostBroadcast(target) {
                let to = target == .broadcast ? IPv4Address.broadcast : config.network.broadcast
                counts.bump(.udpBroadcastsDelivered)
                sendUDPToGuest(
                    from: visible, to: IPv4Endpoint(to, guest.port), payload: payload, mac: MACAddress.broadcast)
            } else if let until = entry.answerPorts[sourcePort], until > now {
                counts.bump(.udpBroadcastAnswers)
                sendUDPToGuest(from: visible, to: guest, payload: payload)
            } else {
                counts.bump(.dropUDPUnsolicited)
            }
        }
    }

    /// Whether `address` (a datagram's IP destination as the host received it) is a broadcast address: the limited
    /// broadcast, or the directed broadcast of a host interface. The interface list is read again at most once a
    /// second, when an address is not in it.
    func isHostBroadcast(_ address: IPv4Address) -> Bool {
        if address == .broadcast { return true }
        if hostBroadcasts.contains(address) { return true }
        guard hostBroadcastsRead == nil || now &- (hostBroadcastsRead ?? 0) >= 1_000_000_000 else { return false }
        hostBroadcastsRead = now
        var list = [UInt32](repeating: 0, count: 64)
        let found = list.withUnsafeMutableBufferPointer { buffer in
            Int(cnet_ipv4_interface_broadcasts(buffer.baseAddress, Int32(buffer.count)))
        }
        hostBroadcasts = Set(list.prefix(max(0, min(found, list.count))).map { IPv4Address(rawValue: $0) })
        return hostBroadcasts.contains(address)
    }

    /// Whether a host sender may reach the guest through a broadcast port: anyone, except in `restrict` mode.
    private func isAllowedBroadcastSender(_ sender: IPv4Address) -> Bool {
        guard config.restrict else { return true }
        if sender.isLoopback, config.localhostReachable { return true }
        return config.allowedDestinations.contains { $0.contains(sender) }
    }

    /// How a host sender appears to the guest: host loopback, and an address the guest would take for a neighbour
    /// on its own network, as the gateway.
    private func guestVisibleSender(_ sender: IPv4Address) -> IPv4Address {
        sender.isLoopback || config.network.contains(sender) ? config.gateway : sender
    }

    /// Closes the broadcast sockets of guest ports idle past their time; returns the next deadline.
    func expireBroadcastPorts() -> UInt64? {
        var next: UInt64? = nil
        for (guest, var entry) in udpBroadcastPorts {
            if entry.deadline <= now {
                release(entry.fd)
                udpBroadcastPorts[guest] = nil
                counts.bump(.udpBroadcastPortsExpired)
                continue
            }
            let stale = entry.answerPorts.filter { $0.value <= now }.map(\.key)
            if !stale.isEmpty {
                for port in stale { entry.answerPorts[port] = nil }
                udpBroadcastPorts[guest] = entry
            }
            next = min(next ?? entry.deadline, entry.deadline)
        }
        return next
    }
}
