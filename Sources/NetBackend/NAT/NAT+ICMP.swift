import Glibc
import NICCore

/// An echo flow through a ping socket: the guest's echo id towards one destination.
struct ICMPFlowKey: Hashable {
    var guest: IPv4Address
    var destination: IPv4Address
    var identifier: UInt16
}

struct ICMPFlow {
    var fd: Int32
    var deadline: UInt64
    /// The last echo request's IP header and first 8 bytes, for an ICMP error about it.
    var lastPacket: IPv4Packet?
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
            reply.put16(0, at: 2)
            reply.put16(InternetChecksum.of(reply), at: 2)
            counts.bump(.icmpEchoLocal)
            sendToGuest(
                source: packet.destination, destination: packet.source, proto: IPProtocolNumber.icmp, payload: reply)
            return
        }
        let target: IPv4Endpoint
        switch route(to: packet.destination, port: 0, proto: IPProtocolNumber.icmp) {
        case .host(let endpoint): target = endpoint
        case .deny(let counter):
            counts.bump(counter)
            sendICMPError(type: 3, code: counter == .dropIPDestination ? 1 : 13, about: packet)
            return
        }
        let key = ICMPFlowKey(guest: packet.source, destination: packet.destination, identifier: message.u16(4))
        if icmpFlows[key] == nil {
            guard icmpFlows.count < config.limits.icmpFlows else { return counts.bump(.dropICMPFlowLimit) }
            let fd = HostSocket.open(type: HostSocket.datagram, proto: Int32(IPPROTO_ICMP))
            guard fd >= 0 else { return counts.bump(.dropICMPSocket) }
            guard HostSocket.connect(fd, to: IPv4Endpoint(target.address, 0)) == 0 else {
                close(fd)
                return counts.bump(.dropICMPSocket)
            }
            guard register(fd, .icmp(key), events: NATPoller.readable) else { return counts.bump(.dropICMPSocket) }
            icmpFlows[key] = ICMPFlow(fd: fd, deadline: 0)
        }
        guard var flow = icmpFlows[key] else { return }
        flow.deadline = now &+ nanoseconds(config.timeouts.icmpIdle)
        var head = packet
        head.payload = Array(message.prefix(8))
        flow.lastPacket = head
        icmpFlows[key] = flow
        arm(flow.deadline)
        let sent = message.withUnsafeBytes { HostSocket.send(flow.fd, $0) }
        if sent < 0 { counts.bump(.dropICMPSocket) } else { counts.bump(.icmpEchoForwarded) }
    }

    /// Reads echo replies from a ping socket and gives them to the guest with its own echo id.
    func icmpReadable(_ key: ICMPFlowKey) {
        guard let flow = icmpFlows[key] else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<64 {
            let (count, _) = buffer.withUnsafeMutableBytes { HostSocket.receive(flow.fd, into: $0) }
            if let code = Self.unreachableCode(count) {
                // The host's network answered the echo with an error: pass it on, about the guest's last request.
                counts.bump(.dropICMPSocket)
                if let last = flow.lastPacket { sendICMPError(type: 3, code: code, about: last) }
                continue
            }
            guard count >= 8 else {
                if count >= 0 { counts.bump(.dropICMPMalformed) }
                break
            }
            var reply = Array(buffer[0..<count])
            guard reply[0] == 0 else { continue }
            reply.put16(key.identifier, at: 4)
            reply.put16(0, at: 2)
            reply.put16(InternetChecksum.of(reply), at: 2)
            counts.bump(.icmpEchoReplies)
            sendToGuest(source: key.destination, destination: key.guest, proto: IPProtocolNumber.icmp, payload: reply)
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

    /// Sends the guest an ICMP error about `packet` (RFC 1812: the header and as much of the payload as fits in 576
    /// bytes). Never about an ICMP error, a non-first fragment, a broadcast, or a packet from 0.0.0.0.
    func sendICMPError(
        type: UInt8, code: UInt8, extra: UInt32 = 0, about packet: IPv4Packet, from source: IPv4Address? = nil
    ) {
        guard packet.source != .any, packet.fragmentOffset == 0, !packet.destination.isMulticast,
            packet.destination != .broadcast, packet.destination != config.network.broadcast
        else { return }
        if packet.proto == IPProtocolNumber.icmp {
            let kind = packet.payload.u8(0)
            guard kind == 8 || kind == 0 || kind == 13 || kind == 15 else { return }
        }
        var message: [UInt8] = [type, code, 0, 0]
        message.append32(extra)
        let room = max(8, 576 - 20 - 8 - packet.header.count)
        message += packet.header
        message += packet.payload.prefix(room)
        message.put16(InternetChecksum.of(message), at: 2)
        counts.bump(.icmpErrorsSent)
        sendToGuest(
            source: source ?? config.gateway, destination: packet.source, proto: IPProtocolNumber.icmp, payload: message
        )
    }
}
