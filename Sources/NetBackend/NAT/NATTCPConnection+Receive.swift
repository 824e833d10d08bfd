import Glibc
import NICCore

extension NATTCPConnection {
    /// Our window shift, offered when the guest's SYN offers one.
    static let ourWindowShift: UInt8 = 7
    /// The most guest data a deferred acknowledgment leaves unacknowledged: past it the acknowledgment goes at once
    /// (a 64 KiB segment is acknowledged as it comes: fewer acknowledgments then only slow the guest's sending).
    static let deferredAckLimit: UInt32 = 64 << 10
    /// Retransmissions without progress before the connection is reset.
    static let maxRetries = 8

    /// The largest segment payload we send the guest.
    var segmentSize: Int { max(64, min(guestMSS, mtu - headerOverhead)) }

    /// Takes the guest's SYN that opened this connection (its host connect under way): sequence numbers, MSS and
    /// window scaling, and the connect timer. `packet` is the SYN's IP packet, kept for an ICMP error.
    func accept(syn segment: TCPSegment, packet: IPPacket?) {
        guestISN = segment.sequence
        receiveNext = segment.sequence &+ 1
        guestMSS = segment.mss ?? 536
        if let shift = segment.windowShift {
            guestWindowShift = shift
            ourWindowShift = Self.ourWindowShift
        }
        guestWindow = Int(segment.window)
        synPacket = packet
        interest = EventLoop.writable
        deadline = host.now &+ nanoseconds(timeouts.tcpConnect)
        host.arm(deadline)
    }

    /// Opens a connection a port forward accepted: sends the guest our SYN and starts the connect and SYN timers.
    func connect() {
        deadline = host.now &+ nanoseconds(timeouts.tcpConnect)
        retransmitDeadline = host.now &+ retransmitInterval
        host.arm(retransmitDeadline ?? host.now)
        sendSegment(flags: .syn, sequence: initialSequence, synOptions: true)
    }

    /// Handles a segment from the guest on this connection.
    func handle(_ segment: TCPSegment) {
        switch state {
        case .connecting:
            if segment.has(.rst) { close(abort: true) }
        case .synSent:
            handleSynSent(segment)
        case .established:
            handleEstablished(segment)
        }
    }

    private func handleSynSent(_ segment: TCPSegment) {
        if segment.has(.rst) {
            if segment.has(.ack), segment.acknowledgment == initialSequence &+ 1 { close(abort: true) }
            return
        }
        guard segment.has(.syn), segment.has(.ack), segment.acknowledgment == initialSequence &+ 1 else {
            host.bump(.dropTCPOutOfOrder)
            return
        }
        state = .established
        receiveNext = segment.sequence &+ 1
        guestISN = segment.sequence
        guestMSS = segment.mss ?? 536
        if let shift = segment.windowShift {
            guestWindowShift = shift
            ourWindowShift = Self.ourWindowShift
        }
        guestWindow = Int(segment.window)  // the window in a SYN is never scaled
        retransmitDeadline = nil
        retries = 0
        touch()
        sendSegment(flags: .ack)
        pump()
    }

    private func handleEstablished(_ segment: TCPSegment) {
        if segment.has(.rst) {
            // Accept a reset anywhere in the window we offered (RFC 5961 would want exactly receiveNext).
            let offset = segment.sequence &- receiveNext
            if offset <= UInt32(max(1, advertisedWindow())) { close(abort: true) }
            return
        }
        if segment.has(.syn) {
            // Our SYN-ACK was lost and the guest sent its SYN again: send it again.
            if !segment.has(.ack), segment.sequence == guestISN {
                sendSegment(flags: [.syn, .ack], sequence: initialSequence, synOptions: true)
            } else {
                sendSegment(flags: .ack)
            }
            return
        }
        guard segment.has(.ack) else { return host.bump(.dropTCPMalformed) }
        touch()
        processAck(segment)
        guard !isClosed else { return }
        var needAck = false
        if !segment.payload.isEmpty {
            needAck = true
            receiveData(segment)
            guard !isClosed else { return }
        }
        if segment.has(.fin), !guestFinished {
            let finSequence = segment.sequence &+ UInt32(truncatingIfNeeded: segment.payload.count)
            if finSequence == receiveNext {
                guestFinished = true
                receiveNext = receiveNext &+ 1
                if pendingCount > 0 {
                    shutdownPending = true
                } else {
                    socket?.shutdownWrite()
                }
            }
            needAck = true
        }
        // A keepalive probe (an empty segment one byte before receiveNext) is answered, or the guest gives up.
        if segment.payload.isEmpty, !segment.has(.fin), segment.sequence == receiveNext &- 1 {
            needAck = true
        }
        if needAck {
            if host.deferringAcks, !segment.payload.isEmpty, !segment.has(.fin),
                receiveNext &- acknowledgedUpTo < Self.deferredAckLimit
            {
                if !ackDeferred { host.deferAcknowledgment(self) }
                ackDeferred = true
            } else {
                sendSegment(flags: .ack)
            }
        }
        pump()
        finishIfDone()
    }

    private func processAck(_ segment: TCPSegment) {
        let acknowledged = segment.acknowledgment &- sendUnacknowledged
        let sent = max(sentCount, sentHighest)
        let outstanding = UInt32(truncatingIfNeeded: sent) &+ (finSent ? 1 : 0)
        let window = Int(segment.window) << Int(guestWindowShift)
        if acknowledged == 0 || acknowledged > outstanding {
            // Nothing new (or an acknowledgment of what we never sent): count duplicates for a fast retransmit.
            if acknowledged == 0, segment.payload.isEmpty, outstanding > 0, window == guestWindow,
                !segment.has(.fin)
            {
                duplicateAcks += 1
                if duplicateAcks == 3 { retransmit() }
            }
            if acknowledged == 0 { guestWindow = window }
            return
        }
        let dataAcknowledged = min(Int(acknowledged), sent)
        host.tcpBuffered -= min(host.tcpBuffered, dataAcknowledged)
        consume(dataAcknowledged)
        if finSent, Int(acknowledged) == dataAcknowledged + 1 {
            finAcknowledged = true
            sendUnacknowledged = sendUnacknowledged &+ 1
            finSent = false
        }
        guestWindow = window
        duplicateAcks = 0
        retries = 0
        retransmitDeadline = sentCount > 0 || finSent ? host.now &+ retransmitInterval : nil
        growCongestionWindow(acknowledgedBytes: dataAcknowledged)
    }

    /// Slow start, then one segment per window's worth of acknowledgments; never past the in-flight limit.
    private func growCongestionWindow(acknowledgedBytes: Int) {
        let size = max(1, segmentSize)
        let segments = max(1, (acknowledgedBytes + size - 1) / size)
        if congestionWindow < slowStartThreshold {
            congestionWindow += segments
        } else {
            acknowledgedSinceGrowth += segments
            if acknowledgedSinceGrowth >= congestionWindow {
                acknowledgedSinceGrowth = 0
                congestionWindow += 1
            }
        }
        congestionWindow = min(congestionWindow, max(2, limits.tcpSegmentsInFlight))
    }

    private func receiveData(_ segment: TCPSegment) {
        guard !guestFinished else { return }
        guard let socket else {
            host.bump(.dropTCPSocket)
            return reset()
        }
        let payload = segment.payload
        let offset = receiveNext &- segment.sequence
        var skip = 0
        if offset != 0 {
            // Before receiveNext (a retransmission, maybe partly new) or after it (a gap).
            guard Int32(bitPattern: offset) > 0 else { return host.bump(.dropTCPOutOfOrder) }
            guard Int(offset) < payload.count else { return }
            skip = Int(offset)
        }
        let wanted = payload.count - skip
        var sent = 0
        if pendingCount == 0 {
            let result = payload.withUnsafeBytes { socket.send(UnsafeRawBufferPointer(rebasing: $0[skip...])) }
            if result < 0, result != -Int(EAGAIN) {
                host.bump(.dropTCPSocket)
                return reset()
            }
            sent = max(0, min(result, wanted))
        }
        var queued = 0
        if sent < wanted {
            let room = max(0, limits.tcpGuestSlackPerFlow - pendingCount)
            queued = min(room, wanted - sent, max(0, limits.tcpBufferTotal - host.tcpBuffered))
            if queued > 0 {
                pending.append(contentsOf: payload[(skip + sent)..<(skip + sent + queued)])
                host.tcpBuffered += queued
            }
            if sent + queued < wanted {
                host.bump(.tcpSendPartial)
                waitingWritable = true
            }
            updateInterest()
        }
        receiveNext = receiveNext &+ UInt32(truncatingIfNeeded: sent + queued)
    }

    /// Writes pending guest bytes to the host socket; `false` when the connection was reset.
    func flushPending() -> Bool {
        guard let socket else { return true }
        for _ in 0..<16 where pendingCount > 0 {
            let result = pending.withUnsafeBytes { socket.send(UnsafeRawBufferPointer(rebasing: $0[pendingHead...])) }
            if result == -Int(EAGAIN) { break }
            guard result > 0 else {
                host.bump(.dropTCPSocket)
                reset()
                return false
            }
            consumePending(result)
            host.tcpBuffered -= min(host.tcpBuffered, result)
        }
        if pendingCount == 0, shutdownPending {
            shutdownPending = false
            socket.shutdownWrite()
        }
        return true
    }
}
