import CNetShims
import Glibc
import NICCore

extension NATEngine {
    static let ourWindowShift: UInt8 = 7
    /// The most guest data a deferred acknowledgment leaves unacknowledged: past it the acknowledgment goes at once
    /// (a 64 KiB segment is acknowledged as it comes: fewer acknowledgments then only slow the guest's sending).
    static let deferredAckLimit: UInt32 = 64 << 10
    static let maxRetries = 8

    /// The largest segment payload we send the guest.
    func segmentSize(_ flow: TCPFlow) -> Int { max(64, min(flow.guestMSS, config.mtu - flow.headerOverhead)) }

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
        guard let flow = tcpFlows[key] else {
            if segment.has(TCPFlag.syn), !segment.has(TCPFlag.ack), !segment.has(TCPFlag.rst) {
                return openConnection(key, segment, packet)
            }
            counts.bump(.dropTCPNoFlow)
            if !segment.has(TCPFlag.rst) { sendReset(key, replyingTo: segment) }
            return
        }
        switch flow.state {
        case .connecting:
            if segment.has(TCPFlag.rst) { closeFlow(key, abort: true) }
        case .synSent:
            handleSynSent(key, flow, segment)
        case .established:
            handleEstablished(key, flow, segment)
        }
    }

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
            return connectFailed(key, segment: segment, packet: packet, error: result)
        }
        let flow = TCPFlow(fd: fd, state: .connecting, initialSequence: UInt32.random(in: 0...UInt32.max))
        flow.headerOverhead = key.guest.address.isIPv6 ? 60 : 40
        flow.guestISN = segment.sequence
        flow.receiveNext = segment.sequence &+ 1
        flow.guestMSS = segment.mss ?? 536
        if let shift = segment.windowShift {
            flow.guestWindowShift = shift
            flow.ourWindowShift = Self.ourWindowShift
        }
        flow.guestWindow = Int(segment.window)
        flow.synPacket = packet.truncated(8)
        flow.interest = NATPoller.writable
        guard register(fd, .tcp(key), events: flow.interest) else {
            counts.bump(.dropTCPSocket)
            return sendReset(key, replyingTo: segment)
        }
        flow.deadline = now &+ nanoseconds(config.timeouts.tcpConnect)
        arm(flow.deadline)
        tcpFlows[key] = flow
        counts.bump(.tcpConnects)
    }

    /// Answers a failed host connect the way the peers do: RST for refused, ICMP unreachable otherwise.
    private func connectFailed(_ key: TCPFlowKey, segment: TCPSegment, packet: IPPacket, error: Int32) {
        if error == ECONNREFUSED {
            counts.bump(.tcpRefused)
            sendReset(key, replyingTo: segment)
        } else {
            counts.bump(.tcpUnreachable)
            sendUnreachable(error == ENETUNREACH ? .network : .host, about: packet)
        }
    }

    private func handleSynSent(_ key: TCPFlowKey, _ flow: TCPFlow, _ segment: TCPSegment) {
        if segment.has(TCPFlag.rst) {
            if segment.has(TCPFlag.ack), segment.acknowledgment == flow.initialSequence &+ 1 {
                closeFlow(key, abort: true)
            }
            return
        }
        guard segment.has(TCPFlag.syn), segment.has(TCPFlag.ack),
            segment.acknowledgment == flow.initialSequence &+ 1
        else {
            counts.bump(.dropTCPOutOfOrder)
            return
        }
        flow.state = .established
        flow.receiveNext = segment.sequence &+ 1
        flow.guestISN = segment.sequence
        flow.guestMSS = segment.mss ?? 536
        if let shift = segment.windowShift {
            flow.guestWindowShift = shift
            flow.ourWindowShift = Self.ourWindowShift
        }
        flow.guestWindow = Int(segment.window)  // the window in a SYN is never scaled
        flow.retransmitDeadline = nil
        flow.retries = 0
        touch(flow)
        sendSegment(key, flow, flags: TCPFlag.ack)
        pump(key, flow)
    }

    private func handleEstablished(_ key: TCPFlowKey, _ flow: TCPFlow, _ segment: TCPSegment) {
        if segment.has(TCPFlag.rst) {
            // Accept a reset anywhere in the window we offered (RFC 5961 would want exactly receiveNext).
            let offset = segment.sequence &- flow.receiveNext
            if offset <= UInt32(max(1, advertisedWindow(flow))) { closeFlow(key, abort: true) }
            return
        }
        if segment.has(TCPFlag.syn) {
            // Our SYN-ACK was lost and the guest sent its SYN again: send it again.
            if !segment.has(TCPFlag.ack), segment.sequence == flow.guestISN {
                sendSegment(
                    key, flow, flags: TCPFlag.syn | TCPFlag.ack, sequence: flow.initialSequence, synOptions: true)
            } else {
                sendSegment(key, flow, flags: TCPFlag.ack)
            }
            return
        }
        guard segment.has(TCPFlag.ack) else { return counts.bump(.dropTCPMalformed) }
        touch(flow)
        processAck(key, flow, segment)
        guard tcpFlows[key] === flow else { return }
        var needAck = false
        if !segment.payload.isEmpty {
            needAck = true
            receiveData(key, flow, segment)
            guard tcpFlows[key] === flow else { return }
        }
        if segment.has(TCPFlag.fin), !flow.guestFinished {
            let finSequence = segment.sequence &+ UInt32(truncatingIfNeeded: segment.payload.count)
            if finSequence == flow.receiveNext {
                flow.guestFinished = true
                flow.receiveNext = flow.receiveNext &+ 1
                if flow.pendingCount > 0 {
                    flow.shutdownPending = true
                } else if flow.fd >= 0 {
                    _ = Glibc.shutdown(flow.fd, Int32(SHUT_WR))
                }
            }
            needAck = true
        }
        // A keepalive probe (an empty segment one byte before receiveNext) is answered, or the guest gives up.
        if segment.payload.isEmpty, !segment.has(TCPFlag.fin), segment.sequence == flow.receiveNext &- 1 {
            needAck = true
        }
        if needAck {
            if deferringAcks, !segment.payload.isEmpty, !segment.has(TCPFlag.fin),
                flow.receiveNext &- flow.acknowledgedUpTo < Self.deferredAckLimit
            {
                if !flow.ackDeferred { deferredAcks.append(key) }
                flow.ackDeferred = true
            } else {
                sendSegment(key, flow, flags: TCPFlag.ack)
            }
        }
        pump(key, flow)
        finishIfDone(key, flow)
    }

    private func processAck(_ key: TCPFlowKey, _ flow: TCPFlow, _ segment: TCPSegment) {
        let acknowledged = segment.acknowledgment &- flow.sendUnacknowledged
        let sent = max(flow.sentCount, flow.sentHighest)
        let outstanding = UInt32(truncatingIfNeeded: sent) &+ (flow.finSent ? 1 : 0)
        let window = Int(segment.window) << Int(flow.guestWindowShift)
        if acknowledged == 0 || acknowledged > outstanding {
            // Nothing new (or an acknowledgment of what we never sent): count duplicates for a fast retransmit.
            if acknowledged == 0, segment.payload.isEmpty, outstanding > 0, window == flow.guestWindow,
                !segment.has(TCPFlag.fin)
            {
                flow.duplicateAcks += 1
                if flow.duplicateAcks == 3 { retransmit(key, flow) }
            }
            if acknowledged == 0 { flow.guestWindow = window }
            return
        }
        let dataAcknowledged = min(Int(acknowledged), sent)
        tcpBuffered -= min(tcpBuffered, dataAcknowledged)
        flow.consume(dataAcknowledged)
        if flow.finSent, Int(acknowledged) == dataAcknowledged + 1 {
            flow.finAcknowledged = true
            flow.sendUnacknowledged = flow.sendUnacknowledged &+ 1
            flow.finSent = false
        }
        flow.guestWindow = window
        flow.duplicateAcks = 0
        flow.retries = 0
        flow.retransmitDeadline = flow.sentCount > 0 || flow.finSent ? now &+ retransmitInterval(flow) : nil
        growCongestionWindow(flow, acknowledgedBytes: dataAcknowledged)
    }

    /// Slow start, then one segment per window's worth of acknowledgments; never past the in-flight limit.
    private func growCongestionWindow(_ flow: TCPFlow, acknowledgedBytes: Int) {
        let size = max(1, segmentSize(flow))
        let segments = max(1, (acknowledgedBytes + size - 1) / size)
        if flow.congestionWindow < flow.slowStartThreshold {
            flow.congestionWindow += segments
        } else {
            flow.acknowledgedSinceGrowth += segments
            if flow.acknowledgedSinceGrowth >= flow.congestionWindow {
                flow.acknowledgedSinceGrowth = 0
                flow.congestionWindow += 1
            }
        }
        flow.congestionWindow = min(flow.congestionWindow, max(2, config.limits.tcpSegmentsInFlight))
    }

    private func receiveData(_ key: TCPFlowKey, _ flow: TCPFlow, _ segment: TCPSegment) {
        guard !flow.guestFinished else { return }
        guard flow.fd >= 0 else {
            counts.bump(.dropTCPSocket)
            return resetFlow(key, flow)
        }
        let payload = segment.payload
        let offset = flow.receiveNext &- segment.sequence
        var skip = 0
        if offset != 0 {
            // Before receiveNext (a retransmission, maybe partly new) or after it (a gap).
            guard Int32(bitPattern: offset) > 0 else { return counts.bump(.dropTCPOutOfOrder) }
            guard Int(offset) < payload.count else { return }
            skip = Int(offset)
        }
        let wanted = payload.count - skip
        var sent = 0
        if flow.pendingCount == 0 {
            let result = payload.withUnsafeBytes {
                HostSocket.send(flow.fd, UnsafeRawBufferPointer(rebasing: $0[skip...]))
            }
            if result < 0, result != -Int(EAGAIN) {
                counts.bump(.dropTCPSocket)
                return resetFlow(key, flow)
            }
            sent = max(0, result)
        }
        var queued = 0
        if sent < wanted {
            let room = max(0, config.limits.tcpGuestSlackPerFlow - flow.pendingCount)
            queued = min(room, wanted - sent, max(0, config.limits.tcpBufferTotal - tcpBuffered))
            if queued > 0 {
                flow.pending.append(contentsOf: payload[(skip + sent)..<(skip + sent + queued)])
                tcpBuffered += queued
            }
            if sent + queued < wanted {
                counts.bump(.tcpSendPartial)
                flow.waitingWritable = true
            }
            updateInterest(flow)
        }
        flow.receiveNext = flow.receiveNext &+ UInt32(truncatingIfNeeded: sent + queued)
    }

    /// Writes pending guest bytes to the host socket; `false` when the connection was reset.
    private func flushPending(_ key: TCPFlowKey, _ flow: TCPFlow) -> Bool {
        guard flow.fd >= 0 else { return true }
        for _ in 0..<16 where flow.pendingCount > 0 {
            let result = flow.pending.withUnsafeBytes {
                HostSocket.send(flow.fd, UnsafeRawBufferPointer(rebasing: $0[flow.pendingHead...]))
            }
            if result == -Int(EAGAIN) { break }
            guard result > 0 else {
                counts.bump(.dropTCPSocket)
                resetFlow(key, flow)
                return false
            }
            flow.consumePending(result)
            tcpBuffered -= min(tcpBuffered, result)
        }
        if flow.pendingCount == 0, flow.shutdownPending {
            flow.shutdownPending = false
            _ = Glibc.shutdown(flow.fd, Int32(SHUT_WR))
        }
        return true
    }

    // MARK: From the host

    func tcpEvent(_ key: TCPFlowKey, events: UInt32) {
        guard let flow = tcpFlows[key] else { return }
        switch flow.state {
        case .connecting:
            let error = HostSocket.pendingError(flow.fd)
            guard error == 0 else {
                let syn = flow.synPacket
                let segment = TCPSegment(
                    sourcePort: key.guest.port, destinationPort: key.remote.port, sequence: flow.guestISN,
                    flags: TCPFlag.syn)
                removeFlow(key, flow)
                if let syn { connectFailed(key, segment: segment, packet: syn, error: error) }
                return
            }
            guard events & NATPoller.writable != 0 else { return }
            flow.state = .established
            flow.interest = 0
            touch(flow)
            sendSegment(key, flow, flags: TCPFlag.syn | TCPFlag.ack, sequence: flow.initialSequence, synOptions: true)
            pump(key, flow)
        case .synSent:
            if events & NATPoller.hangup != 0 {
                resetFlow(key, flow)
            }
        case .established:
            if events & UInt32(EPOLLERR.rawValue) != 0 {
                let error = HostSocket.pendingError(flow.fd)
                if error != 0 {
                    counts.bump(.dropTCPSocket)
                    return resetFlow(key, flow)
                }
            }
            if events & NATPoller.writable != 0 {
                let flushed = flow.pendingCount
                guard flushPending(key, flow) else { return }
                if flow.waitingWritable || flushed != flow.pendingCount {
                    flow.waitingWritable = false
                    sendSegment(key, flow, flags: TCPFlag.ack)  // the window update
                }
            }
            pump(key, flow)
            if events & UInt32(EPOLLHUP.rawValue) != 0, tcpFlows[key] === flow, flow.hostFinished {
                // Both directions are closed on the host: the socket has nothing more to say.
                detachSocket(flow)
            }
            if tcpFlows[key] === flow { finishIfDone(key, flow) }
        }
    }

    /// Reads from the host what the guest's window allows and sends the guest what it has room for.
    func pump(_ key: TCPFlowKey, _ flow: TCPFlow) {
        guard flow.state == .established else { return }
        readFromHost(key, flow)
        guard tcpFlows[key] === flow else { return }
        let size = segmentSize(flow)
        // A guest link that segments (a TAP with offloads) takes a burst as 64 KiB frames of whole segments.
        let frameSize = guestSegmentation ? max(size, (65_535 - flow.headerOverhead) / size * size) : size
        // In flight at most the guest's window, and at most as many segments as a card's queue sensibly holds: the
        // frames wait in the port's bounded queue until the guest drains it.
        let limit = min(flow.guestWindow, min(config.limits.tcpSegmentsInFlight, flow.congestionWindow) * size)
        var segments = 0
        // One look at the socket's free space per burst, not one per segment.
        let window = flow.unsent > 0 ? advertisedWindow(flow) : 0
        while flow.unsent > 0, segments < 4096 {
            let room = limit - flow.sentCount
            guard room > 0 else { break }
            let length = min(frameSize, flow.unsent, room)
            let start = flow.head + flow.sentCount
            let sequence = flow.sendUnacknowledged &+ UInt32(truncatingIfNeeded: flow.sentCount)
            flow.sentCount += length
            flow.sentHighest = max(flow.sentHighest, flow.sentCount)
            let flags = TCPFlag.ack | (flow.unsent == 0 ? TCPFlag.psh : 0)
            if guestSegmentation {
                sendOffloadedData(
                    key, flow, flags: flags, sequence: sequence, range: start..<(start + length), window: window,
                    segmentSize: size)
            } else {
                sendSegment(
                    key, flow, flags: flags, sequence: sequence, payload: Array(flow.buffer[start..<(start + length)]),
                    window: window)
            }
            segments += 1
        }
        if flow.hostFinished, flow.unsent == 0, !flow.finSent, !flow.finAcknowledged {
            sendSegment(
                key, flow, flags: TCPFlag.fin | TCPFlag.ack,
                sequence: flow.sendUnacknowledged &+ UInt32(truncatingIfNeeded: flow.sentCount))
            flow.finSent = true
        }
        if (flow.sentCount > 0 || flow.finSent || (flow.unsent > 0 && flow.guestWindow <= flow.sentCount)),
            flow.retransmitDeadline == nil
        {
            flow.retransmitDeadline = now &+ retransmitInterval(flow)
            arm(flow.retransmitDeadline ?? now)
        }
        updateInterest(flow)
    }

    private func readFromHost(_ key: TCPFlowKey, _ flow: TCPFlow) {
        guard flow.fd >= 0, !flow.hostFinished else { return }
        for _ in 0..<16 {
            let budget =
                min(
                    flow.guestWindow, config.limits.tcpBufferPerFlow) - flow.buffered
            let total = config.limits.tcpBufferTotal - tcpBuffered
            let length = min(budget, total, 256 << 10)
            guard length > 0 else {
                if total <= 0 { counts.bump(.tcpBufferLimited) }
                return
            }
            if scratch.count < length { scratch = [UInt8](repeating: 0, count: max(length, 256 << 10)) }
            let received = scratch.withUnsafeMutableBytes { recv(flow.fd, $0.baseAddress, length, Int32(MSG_DONTWAIT)) }
            let code = errno
            if received > 0 { flow.buffer.append(contentsOf: scratch[0..<received]) }
            if received > 0 {
                tcpBuffered += received
                if received < length { return }
                continue
            }
            if received == 0 {
                flow.hostFinished = true
                return
            }
            if code == EAGAIN || code == EINTR { return }
            counts.bump(.dropTCPSocket)
            return resetFlow(key, flow)
        }
    }

    /// The window we offer the guest: the host socket's free send space plus the unused slack (0 below one segment,
    /// so the guest waits for the window update rather than sending into a full socket), 0 once the guest finished.
    func advertisedWindow(_ flow: TCPFlow) -> Int {
        guard flow.fd >= 0, !flow.guestFinished, flow.state == .established || flow.state == .connecting else {
            return 0
        }
        let slack = max(0, config.limits.tcpGuestSlackPerFlow - flow.pendingCount)
        let window = (flow.pendingCount == 0 ? HostSocket.sendSpace(flow.fd) : 0) + slack
        guard window >= min(segmentSize(flow), 65_535) else { return 0 }
        return min(window, 65_535 << Int(flow.ourWindowShift))
    }

    // MARK: Timers

    func retransmitInterval(_ flow: TCPFlow) -> UInt64 {
        nanoseconds(config.timeouts.tcpRetransmit) << UInt64(min(flow.retries, 6))
    }

    /// Recovers from a loss (three duplicate acknowledgments, or the timer): halves the congestion window (to 2
    /// segments on a timeout) and goes back to the oldest unacknowledged byte, sending again everything the window
    /// allows. A guest whose ring overflowed lost a run of segments, not one; resending one per round trip or per
    /// timeout stalled such a transfer for minutes.
    private func retransmit(_ key: TCPFlowKey, _ flow: TCPFlow, timeout: Bool = false) {
        counts.bump(.tcpRetransmits)
        flow.duplicateAcks = 0
        let inFlight = max(1, flow.sentCount / max(1, segmentSize(flow)))
        flow.slowStartThreshold = max(2, inFlight / 2)
        flow.congestionWindow = timeout ? 2 : flow.slowStartThreshold
        flow.acknowledgedSinceGrowth = 0
        flow.sentCount = 0
        flow.finSent = false
        flow.retransmitDeadline = nil
        pump(key, flow)
        if flow.retransmitDeadline == nil, flow.sentCount > 0 || flow.finSent {
            flow.retransmitDeadline = now &+ retransmitInterval(flow)
            arm(flow.retransmitDeadline ?? now)
        }
    }

    func runTCPTimers() -> UInt64? {
        var next: UInt64? = nil
        for (key, flow) in tcpFlows {
            if let deadline = flow.retransmitDeadline, deadline <= now {
                flow.retransmitDeadline = nil
                flow.retries += 1
                if flow.retries > Self.maxRetries {
                    counts.bump(.tcpFlowsTimedOut)
                    resetFlow(key, flow)
                    continue
                }
                if flow.state == .synSent {
                    sendSegment(key, flow, flags: TCPFlag.syn, sequence: flow.initialSequence, synOptions: true)
                    flow.retransmitDeadline = now &+ retransmitInterval(flow)
                } else if flow.sentCount == 0, !flow.finSent, flow.unsent > 0 {
                    // A zero window: probe with one byte past it.
                    let probe = Array(flow.buffer[flow.head..<(flow.head + 1)])
                    flow.sentCount = 1
                    sendSegment(key, flow, flags: TCPFlag.ack, sequence: flow.sendUnacknowledged, payload: probe)
                    flow.retransmitDeadline = now &+ retransmitInterval(flow)
                } else {
                    retransmit(key, flow, timeout: true)
                }
            }
            if flow.deadline <= now {
                counts.bump(.tcpFlowsTimedOut)
                if flow.state == .connecting, let syn = flow.synPacket {
                    removeFlow(key, flow)
                    counts.bump(.tcpUnreachable)
                    sendUnreachable(.host, about: syn)
                } else {
                    resetFlow(key, flow)
                }
                continue
            }
            guard tcpFlows[key] === flow else { continue }
            next = min(next ?? flow.deadline, flow.deadline)
            if let pending = flow.retransmitDeadline { next = min(next ?? pending, pending) }
        }
        return next
    }

    /// Pushes the flow's idle deadline out.
    private func touch(_ flow: TCPFlow) {
        let halfClosed = flow.guestFinished || flow.hostFinished
        flow.deadline = now &+ nanoseconds(halfClosed ? config.timeouts.tcpFinWait : config.timeouts.tcpIdle)
    }

    // MARK: Teardown

    private func finishIfDone(_ key: TCPFlowKey, _ flow: TCPFlow) {
        if flow.guestFinished, flow.finAcknowledged { removeFlow(key, flow) }
    }

    /// Resets the connection on both sides.
    func resetFlow(_ key: TCPFlowKey, _ flow: TCPFlow) {
        counts.bump(.tcpResetsSent)
        sendSegment(key, flow, flags: TCPFlag.rst | TCPFlag.ack)
        closeFlow(key, abort: true)
    }

    /// Closes the host socket (with a reset when `abort`) and forgets the flow.
    func closeFlow(_ key: TCPFlowKey, abort: Bool) {
        guard let flow = tcpFlows[key] else { return }
        if abort, flow.fd >= 0 { HostSocket.abort(flow.fd) }
        removeFlow(key, flow)
    }

    private func removeFlow(_ key: TCPFlowKey, _ flow: TCPFlow) {
        detachSocket(flow)
        tcpBuffered -= min(tcpBuffered, flow.buffered + flow.pendingCount)
        tcpFlows[key] = nil
    }

    private func detachSocket(_ flow: TCPFlow) {
        guard flow.fd >= 0 else { return }
        release(flow.fd)
        flow.fd = -1
        flow.interest = 0
    }

    private func updateInterest(_ flow: TCPFlow) {
        guard flow.fd >= 0, flow.state != .connecting else { return }
        var interest: UInt32 = 0
        let room = min(flow.guestWindow, config.limits.tcpBufferPerFlow) - flow.buffered
        if !flow.hostFinished, room > 0, tcpBuffered < config.limits.tcpBufferTotal { interest |= NATPoller.readable }
        if flow.waitingWritable || flow.pendingCount > 0 { interest |= NATPoller.writable }
        if interest != flow.interest {
            flow.interest = interest
            poller.modify(flow.fd, events: interest)
        }
    }

    // MARK: Segments to the guest

    /// Sends the guest a segment on `flow` (`sequence` defaults to the next one; `ack` and window are current).
    func sendSegment(
        _ key: TCPFlowKey, _ flow: TCPFlow, flags: UInt8, sequence: UInt32? = nil, payload: [UInt8] = [],
        synOptions: Bool = false, window known: Int? = nil
    ) {
        if flags & TCPFlag.ack != 0 {  // this one acknowledges everything so far
            flow.ackDeferred = false
            flow.acknowledgedUpTo = flow.receiveNext
        }
        var options: [UInt8] = []
        if synOptions {
            options = [2, 4]
            options.appendBigEndian16(UInt16(clamping: config.mtu - flow.headerOverhead))
            if flow.ourWindowShift > 0 || flow.state == .synSent { options += [1, 3, 3, Self.ourWindowShift] }
        }
        emitSegment(
            from: key.remote, to: key.guest, sequence: sequence ?? flow.sendNext,
            acknowledgment: flags & TCPFlag.ack != 0 || flow.state != .synSent ? flow.receiveNext : 0,
            flags: flags, window: windowField(flow, flags: flags, known: known), options: options, payload: payload)
    }

    /// The window field of a segment on `flow` (`known` is the window if already looked up); a closed window makes
    /// the flow wait for the socket to drain, to send the update.
    func windowField(_ flow: TCPFlow, flags: UInt8, known: Int?) -> UInt16 {
        let available = known ?? advertisedWindow(flow)
        let window = flags & TCPFlag.syn != 0 ? min(65_535, available) : available
        let field = flags & TCPFlag.syn != 0 ? window : window >> Int(flow.ourWindowShift)
        if field == 0, flags & TCPFlag.rst == 0, !flow.guestFinished, flow.fd >= 0, !flow.waitingWritable {
            flow.waitingWritable = true
            updateInterest(flow)
        }
        return UInt16(clamping: field)
    }

    /// Sends the acknowledgments a burst of the guest's data deferred: one per connection, for everything it sent.
    func sendDeferredAcks() {
        for key in deferredAcks {
            guard let flow = tcpFlows[key], flow.ackDeferred else { continue }
            sendSegment(key, flow, flags: TCPFlag.ack)
        }
        deferredAcks.removeAll(keepingCapacity: true)
    }

    /// Answers a segment that belongs to no connection with a reset (RFC 793 "reset generation").
    func sendReset(_ key: TCPFlowKey, replyingTo segment: TCPSegment) {
        counts.bump(.tcpResetsSent)
        if segment.has(TCPFlag.ack) {
            emitSegment(
                from: key.remote, to: key.guest, sequence: segment.acknowledgment, acknowledgment: 0,
                flags: TCPFlag.rst, window: 0)
        } else {
            var length = UInt32(truncatingIfNeeded: segment.payload.count)
            if segment.has(TCPFlag.syn) { length &+= 1 }
            if segment.has(TCPFlag.fin) { length &+= 1 }
            emitSegment(
                from: key.remote, to: key.guest, sequence: 0, acknowledgment: segment.sequence &+ length,
                flags: TCPFlag.rst | TCPFlag.ack, window: 0)
        }
    }

    func emitSegment(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: UInt8, window: UInt16, options: [UInt8] = [], payload: [UInt8] = []
    ) {
        let segment = TransportSegment.tcp(
            from: source, to: destination, sequence: sequence, acknowledgment: acknowledgment, flags: flags,
            window: window, options: options, payload: payload)
        sendToGuest(
            source: source.address, destination: destination.address, proto: IPProtocolNumber.tcp, payload: segment,
            dontFragment: true)
    }
}
