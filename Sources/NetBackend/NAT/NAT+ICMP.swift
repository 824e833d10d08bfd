import Glibc
import NICCore

/// An echo flow through a ping socket: the guest's echo id towards one destination.
struct ICMPFlowKey: Hashable {
    var guest: IPAddress
    var destination: IPAddress
    var identifier: UInt16
}

struct ICMPFlow {
    var fd: Int32
    var deadline: UInt64
    /// The last echo request's IP header and first 8 bytes, for an ICMP error about it.
    var lastPacket: IPPacket?
}

/// Why a packet from the guest could not be delivered, as an ICMP or ICMPv6 error tells it.
enum Unreachable: Equatable {
    case network, host, port, prohibited
    /// Larger than the path allows (ICMP "fragmentation needed", ICMPv6 "packet too big").
    case tooBig

    /// The ICMP (type 3) code.
    var code: UInt8 {
        switch self {
        case .network: return 0
        case .host: return 1
        case .port: return 3
        case .tooBig: return 4
        case .prohibited: return 13
        }
    }

    /// The ICMPv6 destination unreachable (type 1) code.
    var code6: UInt8 {
        switch self {
        case .network: return 0
        case .prohibited: return 1
        case .host, .tooBig: return 3
        case .port: return 4
        }
    }
}

extension NATEngine {
    /// Handles an ICMP message from the guest: echo requests to the gateway and DNS addresses are answered here,
    /// others go out through an unprivileged ping socket when the policy allows; the guest's own errors are dropped.
    func handleICMP(_ packet: IPv4Packet) {
        let message = packet.payload
        guard message.count >= 8 else { return counts.bump(.dropICMPMalformed) }
        guard InternetChecksum.of(message) == 0 else { return counts.bump(.dropICMPChecksum) }
        guard message[0] == 8, message[1] == 0 else { return counts.bump(.dropICMPType) }
        guard packet.source != .any else { return counts.bump(.dropIPSourceSpoofed) }
        if packet.destination == config.gateway || packet.destination == config.dnsAddress {
            var reply = message
            reply[0] = 0
            reply.storeBigEndian16(0, at: 2)
            reply.storeBigEndian16(InternetChecksum.of(reply), at: 2)
            counts.bump(.icmpEchoLocal)
            sendToGuest(
                source: packet.destination, destination: packet.source, proto: IPProtocolNumber.icmp, payload: reply)
            return
        }
        let target: IPEndpoint
        switch route(to: .v4(packet.destination), port: 0, proto: IPProtocolNumber.icmp) {
        case .host(let endpoint): target = endpoint
        case .deny(let counter):
            counts.bump(counter)
            sendICMPError(type: 3, code: counter == .dropIPDestination ? 1 : 13, about: packet)
            return
        }
        forwardEcho(message, packet: .v4(packet), to: target)
    }

    /// Sends an echo request out through the ping socket of its flow (made on first use); replies come back through
    /// ``icmpReadable(_:)``.
    func forwardEcho(_ message: [UInt8], packet: IPPacket, to target: IPEndpoint) {
        let key = ICMPFlowKey(
            guest: packet.source, destination: packet.destination, identifier: message.bigEndian16(at: 4))
        if icmpFlows[key] == nil {
            guard icmpFlows.count < config.limits.icmpFlows else { return counts.bump(.dropICMPFlowLimit) }
            let ipv6 = target.address.isIPv6
            let fd = HostSocket.open(
                type: HostSocket.datagram, proto: Int32(ipv6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP), ipv6: ipv6)
            guard fd >= 0 else { return counts.bump(.dropICMPSocket) }
            guard HostSocket.connect(fd, to: IPEndpoint(target.address, 0)) == 0 else {
                close(fd)
                return counts.bump(.dropICMPSocket)
            }
            guard register(fd, .icmp(key), events: EventLoop.readable) else { return counts.bump(.dropICMPSocket) }
            icmpFlows[key] = ICMPFlow(fd: fd, deadline: 0)
        }
        guard var flow = icmpFlows[key] else { return }
        flow.deadline = now &+ nanoseconds(config.timeouts.icmpIdle)
        flow.lastPacket = packet.truncated(8)
        icmpFlows[key] = flow
        arm(flow.deadline)
        let sent = message.withUnsafeBytes { HostSocket.send(flow.fd, $0) }
        if sent < 0 { counts.bump(.dropICMPSocket) } else { counts.bump(.icmpEchoForwarded) }
    }

    /// Reads echo replies from a ping socket and gives them to the guest with its own echo id.
    func icmpReadable(_ key: ICMPFlowKey) {
        guard let flow = icmpFlows[key] else { return }
        readDatagrams(from: flow.fd) { count, _, bytes in
            if let reason = Self.unreachableReason(count) {
                // The host's network answered the echo with an error: pass it on, about the guest's last request.
                counts.bump(.dropICMPSocket)
                if let last = flow.lastPacket { sendUnreachable(reason, about: last) }
                return true
            }
            guard count >= 8 else {
                if count >= 0 { counts.bump(.dropICMPMalformed) }
                return false
            }
            var reply = Array(bytes)
            let ipv6 = key.guest.isIPv6
            guard reply[0] == (ipv6 ? ICMPv6Type.echoReply.rawValue : 0) else { return true }
            reply.storeBigEndian16(key.identifier, at: 4)
            reply.storeBigEndian16(0, at: 2)
            let proto = ipv6 ? IPProtocolNumber.icmpv6 : IPProtocolNumber.icmp
            if case .v6(let from) = key.destination, case .v6(let to) = key.guest {
                reply.storeBigEndian16(
                    transportChecksum(source: from, destination: to, proto: proto, segment: reply), at: 2)
            } else {
                reply.storeBigEndian16(InternetChecksum.of(reply), at: 2)
            }
            counts.bump(.icmpEchoReplies)
            sendToGuest(source: key.destination, destination: key.guest, proto: proto, payload: reply)
            return true
        }
    }

    func expireICMP() -> UInt64? {
        var next: UInt64? = nil
        for (key, flow) in icmpFlows {
            if flow.deadline <= now {
                release(flow.fd)
                icmpFlows[key] = nil
            } else {
                next = min(next ?? flow.deadline, flow.deadline)
            }
        }
        return next
    }

    /// Sends the guest a destination unreachable (or packet too big) about `packet`, as ICMP or ICMPv6.
    func sendUnreachable(_ reason: Unreachable, about packet: IPPacket, from source: IPAddress? = nil) {
        switch packet {
        case .v4(let packet4):
            var from: IPv4Address?
            if case .v4(let address) = source { from = address }
            let extra = reason == .tooBig ? UInt32(truncatingIfNeeded: config.mtu) : 0
            sendICMPError(type: 3, code: reason.code, extra: extra, about: packet4, from: from)
        case .v6(let packet6):
            var from: IPv6Address?
            if case .v6(let address) = source { from = address }
            if reason == .tooBig {
                sendICMPv6Error(
                    type: .packetTooBig, code: 0, extra: UInt32(truncatingIfNeeded: config.mtu),
                    about: packet6, from: from)
            } else {
                sendICMPv6Error(type: .destinationUnreachable, code: reason.code6, about: packet6, from: from)
            }
        }
    }

    /// Sends the guest an ICMP error about `packet` (RFC 1812: the header and as much of the payload as fits in 576
    /// bytes). Never about an ICMP error, a non-first fragment, a broadcast, or a packet from 0.0.0.0.
    func sendICMPError(
        type: UInt8, code: UInt8, extra: UInt32 = 0, about packet: IPv4Packet, from source: IPv4Address? = nil
    ) {
        guard packet.source != .any, packet.fragmentOffset == 0, !packet.destination.isMulticast,
            packet.destination != .broadcast, packet.destination != config.network.broadcast
        else { return }
        if packet.proto == IPProtocolNumber.icmp {
            let kind = packet.payload.byte(at: 0)
            guard kind == 8 || kind == 0 || kind == 13 || kind == 15 else { return }
        }
        guard allowICMPError() else { return }
        var message: [UInt8] = [type, code, 0, 0]
        message.appendBigEndian32(extra)
        let room = max(8, 576 - 20 - 8 - packet.header.count)
        message += packet.header
        message += packet.payload.prefix(room)
        message.storeBigEndian16(InternetChecksum.of(message), at: 2)
        counts.bump(.icmpErrorsSent)
        sendToGuest(
            source: source ?? config.gateway, destination: packet.source, proto: IPProtocolNumber.icmp, payload: message
        )
    }
}
