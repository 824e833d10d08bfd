import Glibc
import NICCore

extension NATTCPConnection {
    /// The retransmission timeout: the configured one, doubled per retry up to 64 times it.
    var retransmitInterval: UInt64 { nanoseconds(timeouts.tcpRetransmit) << UInt64(min(retries, 6)) }

    /// Recovers from a loss (three duplicate acknowledgments, or the timer): halves the congestion window (to 2
    /// segments on a timeout) and goes back to the oldest unacknowledged byte, sending again everything the window
    /// allows. A guest whose ring overflowed lost a run of segments, not one; resending one per round trip or per
    /// timeout stalled such a transfer for minutes.
    func retransmit(timeout: Bool = false) {
        host.bump(.tcpRetransmits)
        duplicateAcks = 0
        let inFlight = max(1, sentCount / max(1, segmentSize))
        slowStartThreshold = max(2, inFlight / 2)
        congestionWindow = timeout ? 2 : slowStartThreshold
        acknowledgedSinceGrowth = 0
        sentCount = 0
        finSent = false
        retransmitDeadline = nil
        pump()
        if retransmitDeadline == nil, sentCount > 0 || finSent {
            retransmitDeadline = host.now &+ retransmitInterval
            host.arm(retransmitDeadline ?? host.now)
        }
    }

    /// Runs the connection's timers at the host's `now`: retransmission (a SYN, a zero-window probe or the data in
    /// flight) and the idle or connect deadline. Returns the next deadline, or `nil` when the connection closed.
    func runTimers() -> UInt64? {
        let now = host.now
        if let pending = retransmitDeadline, pending <= now {
            retransmitDeadline = nil
            retries += 1
            if retries > Self.maxRetries {
                host.bump(.tcpFlowsTimedOut)
                reset()
                return nil
            }
            if state == .synSent {
                sendSegment(flags: .syn, sequence: initialSequence, synOptions: true)
                retransmitDeadline = now &+ retransmitInterval
            } else if sentCount == 0, !finSent, unsent > 0 {
                // A zero window: probe with one byte past it.
                let probe = Array(buffer[head..<(head + 1)])
                sentCount = 1
                sendSegment(flags: .ack, sequence: sendUnacknowledged, payload: probe)
                retransmitDeadline = now &+ retransmitInterval
            } else {
                retransmit(timeout: true)
            }
        }
        if deadline <= now {
            host.bump(.tcpFlowsTimedOut)
            if state == .connecting, let syn = synPacket {
                remove()
                host.bump(.tcpUnreachable)
                host.reportUnreachable(.host, about: syn)
            } else {
                reset()
            }
            return nil
        }
        guard !isClosed else { return nil }
        return min(deadline, retransmitDeadline ?? deadline)
    }

    /// Pushes the idle deadline out.
    func touch() {
        let halfClosed = guestFinished || hostFinished
        deadline = host.now &+ nanoseconds(halfClosed ? timeouts.tcpFinWait : timeouts.tcpIdle)
    }

    // MARK: The host socket

    /// Handles readiness of the host socket: the connect's result, room to write, bytes or the end to read.
    func socketEvent(_ events: UInt32) {
        guard let socket else { return }
        switch state {
        case .connecting:
            let error = socket.pendingError()
            guard error == 0 else {
                let segment = TCPSegment(
                    sourcePort: key.guest.port, destinationPort: key.remote.port, sequence: guestISN,
                    flags: .syn)
                let syn = synPacket
                remove()
                Self.connectFailed(key, segment: segment, packet: syn, error: error, host: host)
                return
            }
            guard events & EventLoop.writable != 0 else { return }
            state = .established
            interest = 0
            touch()
            sendSegment(flags: [.syn, .ack], sequence: initialSequence, synOptions: true)
            pump()
        case .synSent:
            if events & EventLoop.hangup != 0 { reset() }
        case .established:
            if events & EventLoop.error != 0, socket.pendingError() != 0 {
                host.bump(.dropTCPSocket)
                return reset()
            }
            if events & EventLoop.writable != 0 {
                let flushed = pendingCount
                guard flushPending() else { return }
                if waitingWritable || flushed != pendingCount {
                    waitingWritable = false
                    sendSegment(flags: .ack)  // the window update
                }
            }
            pump()
            if events & EventLoop.peerClosed != 0, !isClosed, hostFinished {
                // Both directions are closed on the host: the socket has nothing more to say.
                detachSocket()
            }
            if !isClosed { finishIfDone() }
        }
    }

    /// Answers a failed host connect the way the peers do: RST for refused, ICMP unreachable about the SYN's
    /// `packet` otherwise.
    static func connectFailed(
        _ key: TCPFlowKey, segment: TCPSegment, packet: IPPacket?, error: Int32, host: any NATTCPHost
    ) {
        if error == ECONNREFUSED {
            host.bump(.tcpRefused)
            host.sendReset(key, replyingTo: segment)
        } else if let packet {
            host.bump(.tcpUnreachable)
            host.reportUnreachable(error == ENETUNREACH ? .network : .host, about: packet)
        }
    }

    /// Watches the socket for what the connection can use now: bytes while the guest's window and the buffers have
    /// room, room to write while guest bytes wait or the guest waits for a window update.
    func updateInterest() {
        guard let socket, state != .connecting else { return }
        var wanted: UInt32 = 0
        let room = min(guestWindow, limits.tcpBufferPerFlow) - buffered
        if !hostFinished, room > 0, host.tcpBuffered < limits.tcpBufferTotal { wanted |= EventLoop.readable }
        if waitingWritable || pendingCount > 0 { wanted |= EventLoop.writable }
        if wanted != interest {
            interest = wanted
            socket.setInterest(wanted)
        }
    }

    // MARK: Teardown

    /// Forgets the connection once both sides finished and the guest acknowledged our FIN.
    func finishIfDone() {
        if guestFinished, finAcknowledged { remove() }
    }

    /// Resets the connection on both sides.
    func reset() {
        host.bump(.tcpResetsSent)
        sendSegment(flags: [.rst, .ack])
        close(abort: true)
    }

    /// Closes the host socket (with a reset when `abort`) and forgets the connection.
    func close(abort: Bool) {
        guard !isClosed else { return }
        if abort { socket?.abort() }
        remove()
    }

    /// Releases the socket and the buffered bytes, and has the host forget the connection.
    func remove() {
        guard !isClosed else { return }
        detachSocket()
        host.tcpBuffered -= min(host.tcpBuffered, buffered + pendingCount)
        isClosed = true
        host.connectionClosed(self)
    }

    /// Closes the socket; the connection carries on with the guest alone (its last bytes, FIN and acknowledgment).
    func detachSocket() {
        guard let socket else { return }
        socket.close()
        self.socket = nil
        interest = 0
    }
}
