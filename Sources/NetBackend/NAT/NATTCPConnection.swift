/// A TCP connection between the guest and the remote it sees (`remote`), carried by one host socket.
struct TCPFlowKey: Hashable {
    var guest: IPEndpoint
    var remote: IPEndpoint
}

/// Whether `a` comes before `b` in sequence space.
func sequenceLess(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

/// One TCP connection between the guest and a host socket: its state machine, flow and congestion control and
/// timers. It makes no system calls: it talks to its host socket through ``NATSocket``, to the guest and the rest of
/// the NAT through ``NATTCPHost`` (which also gives the time), so tests drive it against fakes with a manual clock.
/// ``NATEngine`` parses the guest's segments and hands them to ``handle(_:)``, socket readiness to
/// ``socketEvent(_:)``, and runs ``runTimers()``.
///
/// Guest to host: bytes are written to the host socket as they arrive and acknowledged only as far as the socket
/// accepted them, plus a small bounded slack (``pending``) that keeps the guest's window open while the kernel grows
/// the socket's send buffer; the window offered to the guest is the socket's free send space plus the unused slack.
/// Host to guest: bytes are read from the host socket only as far as the guest's window allows, and kept in
/// ``buffer`` until the guest acknowledges them, so memory per connection is bounded by the guest's window and
/// ``NATLimits``.
final class NATTCPConnection {
    enum State {
        /// The guest's SYN arrived; the host connect is under way.
        case connecting
        /// A port forward accepted a host connection; our SYN to the guest awaits its SYN-ACK.
        case synSent
        /// Data flows (including half-closed states).
        case established
    }

    /// The connection's addresses as the guest sees them.
    let key: TCPFlowKey
    /// The NAT the connection belongs to. It holds every connection and outlives them (tests hold theirs), so the
    /// reference is not counted: the per-segment paths read it many times.
    unowned(unsafe) let host: any NATTCPHost
    /// The host socket; `nil` once released.
    var socket: (any NATSocket)?
    var state: State
    /// The limits, timeouts and MTU of the NAT.
    let limits: NATLimits
    let timeouts: NATTimeouts
    let mtu: Int
    /// The events the socket is watched for (0 when none).
    var interest: UInt32 = 0
    /// The connection closed: the host forgot it, and it does nothing more.
    var isClosed = false

    // Guest to host.
    /// The next sequence number expected from the guest.
    var receiveNext: UInt32 = 0
    var guestFinished = false
    var guestISN: UInt32 = 0
    /// The guest's window shift, and ours (both 0 unless both SYNs carried the option).
    var guestWindowShift: UInt8 = 0
    var ourWindowShift: UInt8 = 0
    var guestMSS = 536
    /// The IP and TCP header bytes of a full-sized segment: 40 over IPv4, 60 over IPv6.
    var headerOverhead = 40
    /// The window offered to the guest was closed: send a window update when the socket drains.
    var waitingWritable = false
    /// Guest bytes acknowledged but not yet taken by the host socket (at most the per-flow slack).
    var pending: [UInt8] = []
    var pendingHead = 0
    /// The guest's FIN arrived while bytes were pending: shut the socket's write side once they are written.
    var shutdownPending = false
    /// The guest's data is owed an acknowledgment at the end of the current burst (see `NATEngine.deferringAcks`).
    var ackDeferred = false
    /// The acknowledgment number we last sent.
    var acknowledgedUpTo: UInt32 = 0

    // Host to guest.
    let initialSequence: UInt32
    /// The oldest byte the guest has not acknowledged (``buffer`` starts here, at ``head``).
    var sendUnacknowledged: UInt32
    var buffer: [UInt8] = []
    var head = 0
    /// Buffered bytes already sent at least once.
    var sentCount = 0
    var guestWindow = 536
    var hostFinished = false
    var finSent = false
    var finAcknowledged = false
    var duplicateAcks = 0
    /// The congestion window in segments: slow start from 10, halved on a loss, so a burst never floods a guest
    /// whose receive ring is smaller than its advertised window (a PCnet's 32 descriptors behind a 64 KiB window).
    var congestionWindow = 10
    /// Slow start's threshold, in segments.
    var slowStartThreshold = 1 << 20
    /// Segments acknowledged since the window last grew in congestion avoidance.
    var acknowledgedSinceGrowth = 0
    /// The most bytes past `sendUnacknowledged` ever sent: after going back to resend, the guest may acknowledge
    /// data it kept from before the loss, beyond what was sent again.
    var sentHighest = 0
    var retransmitDeadline: UInt64?
    var retries = 0
    var deadline: UInt64 = 0
    /// The guest's SYN, for an ICMP error if the host connect fails.
    var synPacket: IPPacket?

    /// A connection on `socket` in `state`, sending from `initialSequence` (a random number in use).
    init(
        _ key: TCPFlowKey, socket: any NATSocket, state: State, initialSequence: UInt32, host: any NATTCPHost,
        config: NATConfiguration
    ) {
        self.key = key
        self.socket = socket
        self.state = state
        self.initialSequence = initialSequence
        self.host = host
        limits = config.limits
        timeouts = config.timeouts
        mtu = config.mtu
        sendUnacknowledged = initialSequence &+ 1
        headerOverhead = key.guest.address.isIPv6 ? 60 : 40
    }

    /// Guest bytes waiting for the host socket.
    var pendingCount: Int { pending.count - pendingHead }

    /// Forgets `count` pending bytes the host socket took.
    func consumePending(_ count: Int) {
        pendingHead += min(count, pendingCount)
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead >= 1 << 16, pendingHead * 2 >= pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    /// Bytes read from the host and not yet acknowledged.
    var buffered: Int { buffer.count - head }
    /// Bytes read from the host and not yet sent.
    var unsent: Int { buffered - sentCount }
    /// The next sequence number we send.
    var sendNext: UInt32 {
        sendUnacknowledged &+ UInt32(truncatingIfNeeded: sentCount) &+ (finSent ? 1 : 0)
    }

    /// Forgets `count` acknowledged bytes.
    func consume(_ count: Int) {
        guard count > 0 else { return }
        let taken = min(count, buffered)
        head += taken
        sentCount = max(0, sentCount - taken)
        sentHighest = max(sentCount, sentHighest - taken)
        sendUnacknowledged = sendUnacknowledged &+ UInt32(truncatingIfNeeded: taken)
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            head = 0
        } else if head >= 1 << 16, head * 2 >= buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
    }
}
