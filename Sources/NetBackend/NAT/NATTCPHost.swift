import NICCore

/// The host socket a ``NATTCPConnection`` carries the guest's connection on. The engine's implementation
/// (``NATHostTCPSocket``) makes the system calls and registers the descriptor with the event loop; tests use a fake.
/// Results are the system's: a count, or `-errno`.
protocol NATSocket: AnyObject {
    /// Sends what the socket takes of `bytes` without blocking: the count taken, or `-errno` (`-EAGAIN` when full).
    func send(_ bytes: UnsafeRawBufferPointer) -> Int
    /// Receives into `buffer` without blocking: the count, 0 at the end of the stream, or `-errno`.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int
    /// Ends the stream the socket sends (the guest's FIN).
    func shutdownWrite()
    /// The error a connect or a send left (0 for none), cleared by reading.
    func pendingError() -> Int32
    /// Free space in the send buffer: about how many bytes ``send(_:)`` takes now.
    var sendSpace: Int { get }
    /// The events (``EventLoop/readable``, ``EventLoop/writable``) the connection wants to hear about.
    func setInterest(_ events: UInt32)
    /// Makes the coming ``close()`` a reset rather than an orderly close.
    func abort()
    /// Stops watching the socket and closes it; the connection does not use it again.
    func close()
}

/// What a ``NATTCPConnection`` needs from the NAT around it: the time, the shared buffer budget, counters, timers,
/// and the way to the guest. ``NATEngine`` is the one in use; tests supply their own with a manual clock.
protocol NATTCPHost: AnyObject {
    /// The current time, nanoseconds on the engine's monotonic clock.
    var now: UInt64 { get }
    /// Bytes buffered by every connection together (bounded by ``NATLimits/tcpBufferTotal``).
    var tcpBuffered: Int { get set }
    /// Whether segments to the guest may be up to 64 KiB, split by the guest's link (see ``sendOffloadedData``).
    var guestSegmentation: Bool { get }
    /// Whether acknowledgments of the guest's data wait for the end of the current burst.
    var deferringAcks: Bool { get }
    /// Counts an event or a drop.
    func bump(_ counter: NATCounter)
    /// Notes that a timer of some connection is due at `deadline`.
    func arm(_ deadline: UInt64)
    /// Notes that `connection` owes the guest an acknowledgment at the end of the burst.
    func deferAcknowledgment(_ connection: NATTCPConnection)
    /// Sends the guest a TCP segment.
    func emitSegment(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: TCPFlags, window: UInt16, options: [UInt8], payload: [UInt8])
    /// Sends the guest `range` of `connection`'s buffer as one large segment (only when ``guestSegmentation``).
    func sendOffloadedData(
        _ connection: NATTCPConnection, flags: TCPFlags, sequence: UInt32, range: Range<Int>, window: Int?,
        segmentSize: Int)
    /// Sends the guest an ICMP destination unreachable about `packet` (a SYN whose connect failed).
    func reportUnreachable(_ reason: Unreachable, about packet: IPPacket)
    /// Runs `body` on a scratch buffer of at least `length` bytes, shared by every connection.
    func withScratch<R>(_ length: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R
    /// Forgets `connection`: it closed, its socket is released.
    func connectionClosed(_ connection: NATTCPConnection)
}

extension NATTCPHost {
    /// Answers a segment that belongs to no connection with a reset (RFC 793 "reset generation").
    func sendReset(_ key: TCPFlowKey, replyingTo segment: TCPSegment) {
        bump(.tcpResetsSent)
        if segment.has(.ack) {
            emitSegment(
                from: key.remote, to: key.guest, sequence: segment.acknowledgment, acknowledgment: 0,
                flags: .rst, window: 0, options: [], payload: [])
        } else {
            var length = UInt32(truncatingIfNeeded: segment.payload.count)
            if segment.has(.syn) { length &+= 1 }
            if segment.has(.fin) { length &+= 1 }
            emitSegment(
                from: key.remote, to: key.guest, sequence: 0, acknowledgment: segment.sequence &+ length,
                flags: [.rst, .ack], window: 0, options: [], payload: [])
        }
    }
}
