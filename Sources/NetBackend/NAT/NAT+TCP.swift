import CNetShims
import Glibc
import NICCore

extension NATEngine {
    // MARK: From the guest

    func handleTCP(_ packet: IPPacket, checksummed: Bool) {
        guard isGuestSource(packet.source) else { return counts.bump(.dropIPSourceSpoofed) }
        guard isUnicast(packet.destination) else { return counts.bump(.dropIPDestination) }
        if !checksummed {
            let sum = transportChecksum(
                source: packet.source, destination: packet.destination, proto: IPProtocolNumber.tcp,
                segment: packet.payload)
            guard sum == 0 else { return counts.bump(.dropTCPChecksum) }
        }
        guard let segment = TCPSegment(packet.payload) else { return counts.bump(.dropTCPMalformed) }
        let key = TCPFlowKey(
            guest: IPEndpoint(packet.source, segment.sourcePort),
            remote: IPEndpoint(packet.destination, segment.destinationPort))
        guard let connection = tcpFlows[key] else {
            if segment.has(.syn), !segment.has(.ack), !segment.has(.rst) {
                return openConnection(key, segment, packet)
            }
            counts.bump(.dropTCPNoFlow)
            if !segment.has(.rst) { sendReset(key, replyingTo: segment) }
            return
        }
        connection.handle(segment)
    }

    /// Opens a host socket for the guest's SYN and starts its connect; the connection answers the SYN when the
    /// connect completes.
    private func openConnection(_ key: TCPFlowKey, _ segment: TCPSegment, _ packet: IPPacket) {
        let target: IPEndpoint
        switch route(to: key.remote.address, port: key.remote.port, proto: IPProtocolNumber.tcp) {
        case .host(let endpoint): target = endpoint
        case .deny(let counter):
            counts.bump(counter)
            if counter == .dropIPDestination { return }
            return sendReset(key, replyingTo: segment)
        }
        guard tcpFlows.count < config.limits.tcpFlows else {
            counts.bump(.dropTCPFlowLimit)
            return sendReset(key, replyingTo: segment)
        }
        let fd = HostSocket.open(type: HostSocket.stream, ipv6: target.address.isIPv6)
        guard fd >= 0 else {
            counts.bump(.dropTCPSocket)
            return sendReset(key, replyingTo: segment)
        }
        HostSocket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let result = HostSocket.connect(fd, to: target)
        guard result == 0 || result == EINPROGRESS else {
            close(fd)
            return NATTCPConnection.connectFailed(key, segment: segment, packet: packet, error: result, host: self)
        }
        let connection = NATTCPConnection(
            key, socket: NATHostTCPSocket(fd, engine: self), state: .connecting,
            initialSequence: UInt32.random(in: 0...UInt32.max), host: self, config: config)
        guard register(fd, .tcp(key), events: EventLoop.writable) else {
            counts.bump(.dropTCPSocket)
            return sendReset(key, replyingTo: segment)
        }
        connection.accept(syn: segment, packet: packet.truncated(8))
        tcpFlows[key] = connection
        counts.bump(.tcpConnects)
    }

    // MARK: From the host

    /// Hands readiness of a connection's host socket to the connection.
    func tcpEvent(_ key: TCPFlowKey, events: UInt32) {
        tcpFlows[key]?.socketEvent(events)
    }

    /// Runs every connection's timers; the next deadline.
    func runTCPTimers() -> UInt64? {
        var next: UInt64? = nil
        for connection in tcpFlows.values {
            guard let deadline = connection.runTimers() else { continue }
            next = min(next ?? deadline, deadline)
        }
        return next
    }

    /// Sends the acknowledgments a burst of the guest's data deferred: one per connection, for everything it sent.
    func sendDeferredAcks() {
        for key in deferredAcks {
            guard let connection = tcpFlows[key], connection.ackDeferred else { continue }
            connection.sendSegment(flags: .ack)
        }
        deferredAcks.removeAll(keepingCapacity: true)
    }
}

// MARK: The connections' host

extension NATEngine: NATTCPHost {
    func bump(_ counter: NATCounter) { counts.bump(counter) }

    func deferAcknowledgment(_ connection: NATTCPConnection) { deferredAcks.append(connection.key) }

    func withScratch<R>(_ length: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R {
        if scratch.count < length { scratch = [UInt8](repeating: 0, count: max(length, 256 << 10)) }
        return scratch.withUnsafeMutableBufferPointer { body($0) }
    }

    func connectionClosed(_ connection: NATTCPConnection) {
        if tcpFlows[connection.key] === connection { tcpFlows[connection.key] = nil }
    }

    func reportUnreachable(_ reason: Unreachable, about packet: IPPacket) { sendUnreachable(reason, about: packet) }

    func emitSegment(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: TCPFlags, window: UInt16, options: [UInt8], payload: [UInt8]
    ) {
        let segment = TransportSegment.tcp(
            from: source, to: destination, sequence: sequence, acknowledgment: acknowledgment, flags: flags,
            window: window, options: options, payload: payload)
        sendToGuest(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.tcp, payload: segment,
            dontFragment: true)
    }
}
