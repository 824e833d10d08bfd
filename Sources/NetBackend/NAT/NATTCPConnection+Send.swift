import Glibc
import NICCore

extension NATTCPConnection {
    /// Reads from the host what the guest's window allows and sends the guest what it has room for.
    func pump() {
        guard state == .established else { return }
        readFromHost()
        guard !isClosed else { return }
        let size = segmentSize
        let offloading = host.guestSegmentation
        // A guest link that segments (a TAP with offloads) takes a burst as 64 KiB frames of whole segments.
        let frameSize = offloading ? max(size, (65_535 - headerOverhead) / size * size) : size
        // In flight at most the guest's window, and at most as many segments as a card's queue sensibly holds: the
        // frames wait in the port's bounded queue until the guest drains it.
        let limit = min(guestWindow, min(limits.tcpSegmentsInFlight, congestionWindow) * size)
        var segments = 0
        // One look at the socket's free space per burst, not one per segment.
        let window = unsent > 0 ? advertisedWindow() : 0
        while unsent > 0, segments < 4096 {
            let room = limit - sentCount
            guard room > 0 else { break }
            let length = min(frameSize, unsent, room)
            let start = head + sentCount
            let sequence = sendUnacknowledged &+ UInt32(truncatingIfNeeded: sentCount)
            sentCount += length
            sentHighest = max(sentHighest, sentCount)
            let flags: TCPFlags = unsent == 0 ? [.ack, .psh] : .ack
            if offloading {
                host.sendOffloadedData(
                    self, flags: flags, sequence: sequence, range: start..<(start + length), window: window,
                    segmentSize: size)
            } else {
                sendSegment(
                    flags: flags, sequence: sequence, payload: Array(buffer[start..<(start + length)]), window: window)
            }
            segments += 1
        }
        if hostFinished, unsent == 0, !finSent, !finAcknowledged {
            sendSegment(
                flags: [.fin, .ack], sequence: sendUnacknowledged &+ UInt32(truncatingIfNeeded: sentCount))
            finSent = true
        }
        if sentCount > 0 || finSent || (unsent > 0 && guestWindow <= sentCount), retransmitDeadline == nil {
            retransmitDeadline = host.now &+ retransmitInterval
            host.arm(retransmitDeadline ?? host.now)
        }
        updateInterest()
    }

    private func readFromHost() {
        guard let socket, !hostFinished else { return }
        for _ in 0..<16 {
            let budget = min(guestWindow, limits.tcpBufferPerFlow) - buffered
            let total = limits.tcpBufferTotal - host.tcpBuffered
            let length = min(budget, total, 256 << 10)
            guard length > 0 else {
                if total <= 0 { host.bump(.tcpBufferLimited) }
                return
            }
            let received = host.withScratch(length) { scratch in
                let target = UnsafeMutableBufferPointer(rebasing: scratch[0..<length])
                let received = min(socket.receive(into: UnsafeMutableRawBufferPointer(target)), length)
                // From a typed buffer: one copy, not a byte at a time.
                if received > 0 { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: target[0..<received])) }
                return received
            }
            if received > 0 {
                host.tcpBuffered += received
                if received < length { return }
                continue
            }
            if received == 0 {
                hostFinished = true
                return
            }
            if received == -Int(EAGAIN) || received == -Int(EINTR) { return }
            host.bump(.dropTCPSocket)
            return reset()
        }
    }

    /// The window we offer the guest: the host socket's free send space plus the unused slack (0 below one segment,
    /// so the guest waits for the window update rather than sending into a full socket), 0 once the guest finished.
    func advertisedWindow() -> Int {
        guard let socket, !guestFinished, state == .established || state == .connecting else { return 0 }
        let slack = max(0, limits.tcpGuestSlackPerFlow - pendingCount)
        let window = (pendingCount == 0 ? socket.sendSpace : 0) + slack
        guard window >= min(segmentSize, 65_535) else { return 0 }
        return min(window, 65_535 << Int(ourWindowShift))
    }

    /// Sends the guest a segment (`sequence` defaults to the next one; acknowledgment and window are current).
    func sendSegment(
        flags: TCPFlags, sequence: UInt32? = nil, payload: [UInt8] = [], synOptions: Bool = false,
        window known: Int? = nil
    ) {
        if flags.contains(.ack) {  // this one acknowledges everything so far
            ackDeferred = false
            acknowledgedUpTo = receiveNext
        }
        var options: [UInt8] = []
        if synOptions {
            options = [2, 4]
            options.appendBigEndian16(UInt16(clamping: mtu - headerOverhead))
            if ourWindowShift > 0 || state == .synSent { options += [1, 3, 3, Self.ourWindowShift] }
        }
        host.emitSegment(
            from: key.remote, to: key.guest, sequence: sequence ?? sendNext,
            acknowledgment: flags.contains(.ack) || state != .synSent ? receiveNext : 0,
            flags: flags, window: windowField(flags: flags, known: known), options: options, payload: payload)
    }

    /// The window field of a segment (`known` is the window if already looked up); a closed window makes the
    /// connection wait for the socket to drain, to send the update.
    func windowField(flags: TCPFlags, known: Int?) -> UInt16 {
        let available = known ?? advertisedWindow()
        let window = flags.contains(.syn) ? min(65_535, available) : available
        let field = flags.contains(.syn) ? window : window >> Int(ourWindowShift)
        if field == 0, !flags.contains(.rst), !guestFinished, socket != nil, !waitingWritable {
            waitingWritable = true
            updateInterest()
        }
        return UInt16(clamping: field)
    }
}
