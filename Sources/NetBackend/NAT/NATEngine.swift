import Glibc
import NICCore

/// The NAT's state and protocol logic. Not thread-safe: ``NATAttachment`` runs every call under its lock, from the
/// card's thread (frames from the guest) and from the event loop thread (socket events, timers).
///
/// Frames for the guest are collected in ``outbox`` and delivered by the caller after the lock is released, so a
/// card that transmits from inside its delivery callback never re-enters the engine.
final class NATEngine: @unchecked Sendable {
    let config: NATConfiguration
    let loop: EventLoop
    var counts = NATCounts()
    /// Frames for the guest, delivered when the current call returns.
    var outbox: [InboundFrame] = []
    /// Whether the guest's link takes TCP segments up to 64 KiB with segmentation and checksum metadata (a TAP with
    /// offloads): a burst to the guest then goes as a few large frames instead of one frame per segment.
    var guestSegmentation = false
    /// Whether the frame being handled came with a segmentation request: a TCP segment larger than the MTU that the
    /// guest's stack segments only on the wire, so it is not too big.
    var currentFrameSegmented = false
    /// The guest card's MAC address, learned from its frames.
    var guestMAC: MACAddress?
    /// The address the guest last used as a source (or was leased).
    var guestAddress: IPv4Address?
    /// The IPv6 address (in the prefix) the guest last used as a source.
    var guestAddress6: IPv6Address?
    /// The guest's link-local address, learned from NDP.
    var guestLinkLocal: IPv6Address?
    /// Router advertisement state (see NAT+NDP.swift).
    var routerAdvertisements = RouterAdvertisementSchedule()
    /// The clock, in nanoseconds; monotonic.
    var clock: @Sendable () -> UInt64 = monotonicNanoseconds
    var now: UInt64 = 0
    var nextIdentification: UInt16 = 1

    // Protocol state (see the NAT+*.swift files).
    var leases: [MACAddress: IPv4Address] = [:]
    var reassembly = NATReassembly()
    var udpFlows: [UDPFlowKey: UDPFlow] = [:]
    /// Guest UDP ports open to host broadcasts (see NAT+UDPBroadcast.swift).
    var udpBroadcastPorts: [IPv4Endpoint: UDPBroadcastPort] = [:]
    /// The host interfaces' directed broadcast addresses, and when they were last read (see ``isHostBroadcast(_:)``).
    var hostBroadcasts: Set<IPv4Address> = []
    var hostBroadcastsRead: UInt64?
    var icmpFlows: [ICMPFlowKey: ICMPFlow] = [:]
    var tcpFlows: [TCPFlowKey: NATTCPConnection] = [:]
    /// Who owns each registered descriptor.
    var sockets: [Int32: SocketOwner] = [:]
    var forwards: [String: ForwardListener] = [:]
    var tftpSessions: [IPv4Endpoint: TFTPSession] = [:]
    var tcpBuffered = 0
    var nextForwardPort: UInt16 = 0
    /// When the event loop will next run the timers; arming an earlier timer sets ``wakeNeeded``.
    var scheduledWake: UInt64 = .max
    var wakeNeeded = false
    /// Whether the process may bind ports below ``unprivilegedPortStart``.
    var isPrivileged = geteuid() == 0
    /// Where host sockets are read into before the bytes are copied to a flow.
    var scratch: [UInt8] = []
    /// Whether a burst of the guest's frames is being handled: acknowledgments of its data wait until the burst
    /// ends, one per connection, as a TAP read batch ends (see ``NATRuntime/guestBurst(_:)``).
    var deferringAcks = false
    /// Connections owed an acknowledgment at the end of the burst (each once: ``NATTCPConnection/ackDeferred``).
    var deferredAcks: [TCPFlowKey] = []
    /// ICMP and ICMPv6 errors to the guest (see ``allowICMPError()``).
    var icmpErrorBucket: NATTokenBucket

    /// What a descriptor registered with the event loop belongs to.
    enum SocketOwner {
        case udp(UDPFlowKey)
        case udpBroadcast(IPv4Endpoint)
        case icmp(ICMPFlowKey)
        case tcp(TCPFlowKey)
        case listener(String)
    }

    init(config: NATConfiguration, loop: EventLoop) {
        self.config = config
        self.loop = loop
        now = clock()
        icmpErrorBucket = NATTokenBucket(burst: config.limits.icmpErrorBurst, now: now)
    }

    // MARK: Frames from the guest

    /// Handles one frame the guest sent.
    func handleFrame(_ raw: [UInt8], metadata: FrameMetadata) {
        now = clock()
        counts.bump(.framesIn)
        let bytes = raw
        guard bytes.count >= 14 else { return counts.bump(.dropShortFrame) }
        guard bytes.count <= 65_535 + 14 + 4 else { return counts.bump(.dropFrameTooLong) }
        // A checksum left to finish is one the guest's own stack vouches for (the frame never left the machine), and
        // the NAT ends the connection here rather than forwarding the bytes: the frame is taken as checksummed, with
        // no pass over it and no copy. The request must still point inside the frame.
        if let request = metadata.checksum, !checksumRequestFits(request, frameLength: bytes.count) {
            return counts.bump(.dropIPMalformed)
        }
        currentFrameSegmented = metadata.segmentation != nil
        let (destination, source, type) = bytes.withUnsafeBytes { raw in
            let ethernet = EthernetHeader(raw, lookingThroughVLAN: false)
            return (ethernet?.destination, ethernet?.source, ethernet?.etherType)
        }
        guard let destination, let source, let type else { return counts.bump(.dropShortFrame) }
        // IPv6 multicast (33:33:…) carries NDP and DHCPv6; which groups are ours is decided by the IPv6 address.
        let ipv6Multicast = type == EtherType.ipv6 && destination.rawValue >> 32 == 0x3333
        guard destination == config.gatewayMAC || destination.isBroadcast || ipv6Multicast else {
            return counts.bump(.dropNotForUs)
        }
        guard !source.isMulticast else { return counts.bump(.dropNotForUs) }
        switch type {
        case EtherType.arp: handleARP(bytes, from: source)
        case EtherType.ipv4: handleIPv4Frame(bytes, from: source, checksummed: metadata.checksum != nil)
        case EtherType.ipv6:
            handleIPv6Frame(
                bytes, from: source, multicast: ipv6Multicast || destination.isBroadcast,
                checksummed: metadata.checksum != nil)
        case EtherType.vlan: counts.bump(.dropVLAN)
        default: counts.bump(.dropUnknownEtherType)
        }
    }

    private func handleIPv4Frame(_ bytes: [UInt8], from source: MACAddress, checksummed: Bool) {
        let packet: IPv4Packet
        do {
            packet = try IPv4Packet(parsing: bytes, at: 14)
        } catch .checksum {
            return counts.bump(.dropIPChecksum)
        } catch {
            return counts.bump(.dropIPMalformed)
        }
        // The guest speaks from its own subnet, or from 0.0.0.0 while it has no address (DHCP).
        let fromGuestNetwork =
            config.network.contains(packet.source) && packet.source != config.gateway
            && packet.source != config.dnsAddress && packet.source != config.network.address
            && packet.source != config.network.broadcast
        guard fromGuestNetwork || (packet.source == .any && packet.proto == IPProtocolNumber.udp) else {
            return counts.bump(.dropIPSourceSpoofed)
        }
        guestMAC = source
        if fromGuestNetwork { guestAddress = packet.source }
        if packet.isFragment {
            counts.bump(.fragmentsIn)
            switch reassembly.add(packet, now: now, limits: config.limits, timeout: config.timeouts.reassembly) {
            case .incomplete:
                arm(now &+ nanoseconds(config.timeouts.reassembly))
                return
            case .complete(let whole):
                counts.bump(.reassembled)
                handleIPv4(whole, checksummed: false)
            case .dropped(let counter): counts.bump(counter)
            }
            return
        }
        handleIPv4(packet, checksummed: checksummed)
    }

    /// Handles a whole (reassembled, if it was fragmented) IPv4 packet from the guest.
    func handleIPv4(_ packet: IPv4Packet, checksummed: Bool) {
        let local = packet.destination == config.gateway || packet.destination == config.dnsAddress
        if !local && packet.destination != .broadcast && packet.destination != config.network.broadcast {
            guard packet.ttl > 1 else {
                counts.bump(.dropTTLExceeded)
                sendICMPError(type: 11, code: 0, about: packet)
                return
            }
            if packet.header.count + packet.payload.count > config.mtu, packet.dontFragment,
                !(currentFrameSegmented && packet.proto == IPProtocolNumber.tcp)
            {
                counts.bump(.dropIPTooBig)
                sendICMPError(type: 3, code: 4, extra: UInt32(truncatingIfNeeded: config.mtu), about: packet)
                return
            }
        }
        switch packet.proto {
        case IPProtocolNumber.icmp: handleICMP(packet)
        case IPProtocolNumber.udp: handleUDP(.v4(packet), checksummed: checksummed)
        case IPProtocolNumber.tcp: handleTCP(.v4(packet), checksummed: checksummed)
        default:
            counts.bump(.dropIPProtocol)
            sendICMPError(type: 3, code: 2, about: packet)
        }
    }

    // MARK: Frames to the guest

    /// Queues an IPv4 packet for the guest, fragmented to the MTU when it is larger (unless `dontFragment`).
    func sendToGuest(
        source: IPv4Address, destination: IPv4Address, proto: UInt8, payload: [UInt8], dontFragment: Bool = false,
        mac override: MACAddress? = nil
    ) {
        guard let mac = override ?? guestMAC else { return counts.bump(.dropNoGuestAddress) }
        let identification = nextIdentification
        nextIdentification &+= 1
        let room = config.mtu - 20
        if payload.count <= room || dontFragment {
            let packet = IPv4Packet.build(
                source: source, destination: destination, proto: proto, payload: payload,
                identification: identification, dontFragment: dontFragment)
            queue(ethernetFrame(to: mac, from: config.gatewayMAC, type: EtherType.ipv4, payload: packet))
            return
        }
        let step = room / 8 * 8
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + step)
            let packet = IPv4Packet.build(
                source: source, destination: destination, proto: proto, payload: Array(payload[offset..<end]),
                identification: identification, moreFragments: end < payload.count, fragmentOffset: offset)
            queue(ethernetFrame(to: mac, from: config.gatewayMAC, type: EtherType.ipv4, payload: packet))
            offset = end
        }
    }

    /// Queues a finished frame for the guest.
    func queue(_ frame: [UInt8], metadata: FrameMetadata = .none) {
        outbox.append(InboundFrame(bytes: frame, metadata: metadata))
    }

    /// Queues a packet of either family for the guest (the two addresses are of one family).
    func sendToGuest(
        source: IPAddress, destination: IPAddress, proto: UInt8, payload: [UInt8], dontFragment: Bool = false,
        mac: MACAddress? = nil
    ) {
        switch (source, destination) {
        case (.v4(let from), .v4(let to)):
            sendToGuest(
                source: from, destination: to, proto: proto, payload: payload, dontFragment: dontFragment, mac: mac)
        case (.v6(let from), .v6(let to)):
            sendToGuest6(source: from, destination: to, nextHeader: proto, payload: payload, mac: mac)
        default:
            counts.bump(.dropNoGuestAddress)
        }
    }

    /// The guest address a new flow from the host goes to.
    var defaultGuestAddress: IPv4Address? { guestAddress ?? leases.values.min() }

    // MARK: Timers

    /// Expires what is due; returns the next deadline (nanoseconds, monotonic), or `nil` when nothing waits.
    func runTimers() -> UInt64? {
        now = clock()
        var next: UInt64? = nil
        func consider(_ deadline: UInt64?) {
            guard let deadline else { return }
            next = min(next ?? deadline, deadline)
        }
        consider(reassembly.expire(now: now, counts: &counts))
        consider(expireUDP())
        consider(expireBroadcastPorts())
        consider(expireICMP())
        consider(runTCPTimers())
        consider(runTFTPTimers())
        consider(runRouterAdvertisementTimer())
        return next
    }

    /// Closes every socket; the engine is not used afterwards.
    func shutdown() {
        for fd in Array(sockets.keys) {
            loop.remove(fd)
            close(fd)
        }
        sockets.removeAll()
        udpFlows.removeAll()
        udpBroadcastPorts.removeAll()
        icmpFlows.removeAll()
        tcpFlows.removeAll()
        forwards.removeAll()
        for session in tftpSessions.values { close(session.fd) }
        tftpSessions.removeAll()
    }

    /// Registers `fd` with the event loop for `owner`; closes it and returns `false` on failure.
    func register(_ fd: Int32, _ owner: SocketOwner, events: UInt32) -> Bool {
        guard loop.add(fd, events: events) else {
            close(fd)
            return false
        }
        sockets[fd] = owner
        return true
    }

    /// Unregisters and closes `fd`.
    func release(_ fd: Int32) {
        guard fd >= 0 else { return }
        loop.remove(fd)
        sockets[fd] = nil
        close(fd)
    }

    /// Handles readiness of a registered descriptor.
    func handleEvent(fd: Int32, events: UInt32) {
        now = clock()
        guard let owner = sockets[fd] else { return }
        switch owner {
        case .udp(let key): udpReadable(key)
        case .udpBroadcast(let guest): udpBroadcastReadable(guest)
        case .icmp(let key): icmpReadable(key)
        case .tcp(let key): tcpEvent(key, events: events)
        case .listener(let name): listenerReadable(name)
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
@Sendable func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Seconds as nanoseconds, clamped to a sane range.
func nanoseconds(_ seconds: Double) -> UInt64 {
    guard seconds.isFinite, seconds > 0 else { return 0 }
    return UInt64(min(seconds, 1e9) * 1e9)
}
