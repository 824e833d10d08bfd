import Glibc
import NICCore
import Testing

@testable import NetBackend

/// A host socket that takes and gives what the test says, and records the rest.
final class FakeSocket: NATSocket {
    /// How many more bytes ``send(_:)`` takes; at 0 it answers EAGAIN.
    var room = Int.max
    var sent: [UInt8] = []
    /// Bytes for the connection to read, then the end of the stream when ``ended``.
    var incoming: [UInt8] = []
    var ended = false
    /// What ``pendingError()`` answers (a connect's result).
    var error: Int32 = 0
    var space = 1 << 20
    var interest: UInt32 = 0
    var shutDown = false
    var aborted = false
    var closed = false

    func send(_ bytes: UnsafeRawBufferPointer) -> Int {
        let taken = min(bytes.count, room)
        guard taken > 0 || bytes.isEmpty else { return -Int(EAGAIN) }
        sent += bytes.prefix(taken)
        room -= taken
        return taken
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard !incoming.isEmpty else { return ended ? 0 : -Int(EAGAIN) }
        let count = min(buffer.count, incoming.count)
        incoming.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        incoming.removeFirst(count)
        return count
    }

    func shutdownWrite() { shutDown = true }
    func pendingError() -> Int32 { error }
    var sendSpace: Int { space }
    func setInterest(_ events: UInt32) { interest = events }
    func abort() { aborted = true }
    func close() { closed = true }
}

/// A NAT around one connection: a manual clock, and every segment for the guest recorded.
final class FakeTCPHost: NATTCPHost {
    struct Segment {
        var sequence: UInt32
        var acknowledgment: UInt32
        var flags: TCPFlags
        var window: UInt16
        var options: [UInt8]
        var payload: [UInt8]

        func has(_ flag: TCPFlags) -> Bool { flags.contains(flag) }
    }

    var now: UInt64 = 1_000_000_000
    var tcpBuffered = 0
    var guestSegmentation = false
    var deferringAcks = false
    var counts = NATCounts()
    var armed: [UInt64] = []
    var segments: [Segment] = []
    var unreachable: [Unreachable] = []
    var closed: [NATTCPConnection] = []
    private var scratch = [UInt8](repeating: 0, count: 256 << 10)

    func bump(_ counter: NATCounter) { counts.bump(counter) }
    func arm(_ deadline: UInt64) { armed.append(deadline) }
    func deferAcknowledgment(_ connection: NATTCPConnection) {}

    func emitSegment(
        from source: IPEndpoint, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32,
        flags: TCPFlags, window: UInt16, options: [UInt8], payload: [UInt8]
    ) {
        segments.append(
            Segment(
                sequence: sequence, acknowledgment: acknowledgment, flags: flags, window: window, options: options,
                payload: payload))
    }

    func sendOffloadedData(
        _ connection: NATTCPConnection, flags: TCPFlags, sequence: UInt32, range: Range<Int>, window: Int?,
        segmentSize: Int
    ) {
        Issue.record("no offloads here")
    }

    func reportUnreachable(_ reason: Unreachable, about packet: IPPacket) { unreachable.append(reason) }

    func withScratch<R>(_ length: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R {
        if scratch.count < length { scratch = [UInt8](repeating: 0, count: length) }
        return scratch.withUnsafeMutableBufferPointer { body($0) }
    }

    func connectionClosed(_ connection: NATTCPConnection) { closed.append(connection) }

    /// The segments recorded since the last call.
    func take() -> [Segment] {
        defer { segments.removeAll() }
        return segments
    }
}

/// One connection driven by hand against a fake socket and a fake NAT, with a manual clock: no system calls, no
/// waiting, the same result every run.
@Suite("NAT TCP connection, deterministic")
struct NATTCPConnectionTests {
    static let key = TCPFlowKey(
        guest: IPEndpoint(.v4(IPv4Address(10, 0, 2, 15)), 40_000),
        remote: IPEndpoint(.v4(IPv4Address(192, 0, 2, 1)), 80))
    static let guestISN: UInt32 = 1000
    static let ourISN: UInt32 = 5000
    static let mss = 1000

    let host = FakeTCPHost()
    let socket = FakeSocket()
    let connection: NATTCPConnection

    init() {
        connection = Self.makeConnection(host: host, socket: socket)
    }

    static func makeConnection(
        host: FakeTCPHost, socket: FakeSocket, configure: (inout NATConfiguration) -> Void = { _ in }
    ) -> NATTCPConnection {
        var config = NATConfiguration(slot: 0)
        configure(&config)
        return NATTCPConnection(
            key, socket: socket, state: .connecting, initialSequence: ourISN, host: host, config: config)
    }

    /// A segment from the guest.
    static func guest(
        _ flags: TCPFlags, sequence: UInt32, acknowledgment: UInt32 = 0, window: UInt16 = 65_535, payload: [UInt8] = []
    ) -> TCPSegment {
        var segment = TCPSegment(
            sourcePort: key.guest.port, destinationPort: key.remote.port, sequence: sequence, flags: flags)
        segment.acknowledgment = acknowledgment
        segment.window = window
        segment.payload = payload
        return segment
    }

    /// The guest's SYN (MSS 1000, window scaling by `shift`).
    static func syn(window: UInt16 = 65_535, shift: UInt8? = 0) -> TCPSegment {
        var segment = guest(.syn, sequence: guestISN, window: window)
        segment.mss = mss
        segment.windowShift = shift
        return segment
    }

    /// SYN, the connect completing, SYN-ACK, the guest's ACK: an established connection with nothing sent.
    func establish(window: UInt16 = 65_535, shift: UInt8 = 0) {
        connection.accept(syn: Self.syn(window: window, shift: shift), packet: nil)
        connection.socketEvent(EventLoop.writable)
        _ = host.take()
        connection.handle(
            Self.guest(.ack, sequence: Self.guestISN + 1, acknowledgment: Self.ourISN + 1, window: window))
        _ = host.take()
    }

    @Test func handshakeAnswersTheSYNWhenTheConnectCompletes() {
        connection.accept(syn: Self.syn(), packet: nil)
        #expect(host.take().isEmpty, "nothing until the connect completes")
        #expect(connection.state == .connecting && !host.armed.isEmpty, "the connect timer is armed")
        connection.socketEvent(EventLoop.writable)
        let answer = host.take()
        #expect(answer.count == 1)
        guard let synAck = answer.first else { return }
        #expect(synAck.has(.syn) && synAck.has(.ack))
        #expect(synAck.sequence == Self.ourISN && synAck.acknowledgment == Self.guestISN + 1)
        #expect(Array(synAck.options.prefix(2)) == [2, 4], "our MSS")
        #expect(synAck.options.suffix(4) == [1, 3, 3, NATTCPConnection.ourWindowShift], "window scaling offered back")
        #expect(connection.state == .established)
        connection.handle(Self.guest(.ack, sequence: Self.guestISN + 1, acknowledgment: Self.ourISN + 1))
        #expect(host.take().isEmpty && host.closed.isEmpty)
    }

    @Test func refusedConnectIsAReset() {
        connection.accept(syn: Self.syn(), packet: nil)
        socket.error = ECONNREFUSED
        connection.socketEvent(EventLoop.writable | EventLoop.error)
        let answer = host.take()
        #expect(answer.count == 1)
        #expect(answer.first.map { $0.has(.rst) && $0.acknowledgment == Self.guestISN + 1 } == true)
        #expect(host.counts[.tcpRefused] == 1 && host.counts[.tcpResetsSent] == 1)
        #expect(host.closed.count == 1 && socket.closed && connection.isClosed)
    }

    @Test func guestDataIsAcknowledgedOnlyAsFarAsTheSocketTookIt() {
        let host = FakeTCPHost()
        let socket = FakeSocket()
        let connection = Self.makeConnection(host: host, socket: socket) { $0.limits.tcpGuestSlackPerFlow = 0 }
        connection.accept(syn: Self.syn(), packet: nil)
        connection.socketEvent(EventLoop.writable)
        connection.handle(Self.guest(.ack, sequence: Self.guestISN + 1, acknowledgment: Self.ourISN + 1))
        _ = host.take()
        socket.room = 600
        let data = (0..<1500).map { UInt8(truncatingIfNeeded: $0) }
        connection.handle(
            Self.guest(
                [.ack, .psh], sequence: Self.guestISN + 1, acknowledgment: Self.ourISN + 1, payload: data))
        let ack = host.take()
        #expect(ack.count == 1 && ack.first?.acknowledgment == Self.guestISN + 1 + 600, "only the 600 bytes taken")
        #expect(socket.sent == Array(data[0..<600]))
        #expect(host.counts[.tcpSendPartial] == 1 && socket.interest & EventLoop.writable != 0)
        // The guest sends the rest again once the socket drains; the window update tells it to.
        socket.room = .max
        connection.socketEvent(EventLoop.writable)
        #expect(host.take().count == 1, "a window update")
        connection.handle(
            Self.guest(
                .ack, sequence: Self.guestISN + 1 + 600, acknowledgment: Self.ourISN + 1,
                payload: Array(data[600...])))
        #expect(host.take().first?.acknowledgment == Self.guestISN + 1 + 1500)
        #expect(socket.sent == data)
    }

    @Test func hostDataIsLimitedByTheGuestsWindow() {
        establish(window: 2500)
        socket.incoming = [UInt8](repeating: 7, count: 100_000)
        connection.socketEvent(EventLoop.readable)
        let sent = host.take()
        #expect(sent.map(\.payload.count) == [1000, 1000, 500], "2500 bytes: the guest's window")
        #expect(sent.first?.sequence == Self.ourISN + 1)
        #expect(connection.buffered == 2500, "read from the host only what the window allows")
    }

    @Test func congestionWindowStartsAtTenSegmentsAndHalvesOnLoss() {
        establish(window: 65_535, shift: 7)
        socket.incoming = [UInt8](repeating: 1, count: 100_000)
        connection.socketEvent(EventLoop.readable)
        let burst = host.take()
        #expect(burst.count == 10 && burst.allSatisfy { $0.payload.count == Self.mss }, "ten segments")
        // The first segment is acknowledged: slow start opens the window by one segment per acknowledged one.
        let first = Self.ourISN + 1
        connection.handle(Self.guest(.ack, sequence: Self.guestISN + 1, acknowledgment: first + 1000))
        #expect(host.take().count == 2 && connection.congestionWindow == 11)
        // The second is lost: three duplicate acknowledgments halve the window and resend from it.
        for _ in 0..<3 {
            connection.handle(Self.guest(.ack, sequence: Self.guestISN + 1, acknowledgment: first + 1000))
        }
        let resent = host.take()
        #expect(host.counts[.tcpRetransmits] == 1)
        #expect(connection.congestionWindow == 5 && connection.slowStartThreshold == 5)
        #expect(resent.count == 5 && resent.first?.sequence == first + 1000, "five segments from the lost one")
    }

    @Test func retransmissionOnTimeout() throws {
        establish(window: 65_535, shift: 7)
        socket.incoming = [UInt8](repeating: 1, count: 3000)
        connection.socketEvent(EventLoop.readable)
        #expect(host.take().count == 3)
        let deadline = try #require(connection.retransmitDeadline)
        host.now = deadline - 1
        _ = connection.runTimers()
        #expect(host.take().isEmpty, "not before the deadline")
        host.now = deadline
        let next = connection.runTimers()
        let resent = host.take()
        #expect(resent.map(\.sequence) == [Self.ourISN + 1, Self.ourISN + 1001], "two segments: a window of 2")
        #expect(connection.congestionWindow == 2 && host.counts[.tcpRetransmits] == 1)
        #expect(next.map { $0 > deadline } == true && connection.retries == 1)
        // Every retry without progress doubles the wait; past the limit the connection is reset.
        for _ in 0..<NATTCPConnection.maxRetries {
            host.now = try #require(connection.retransmitDeadline)
            _ = connection.runTimers()
        }
        #expect(connection.isClosed && host.counts[.tcpFlowsTimedOut] == 1)
        #expect(host.take().last.map { $0.has(.rst) } == true && socket.aborted)
    }

    @Test func finBothWays() {
        establish()
        let next = Self.guestISN + 1
        connection.handle(Self.guest([.fin, .ack], sequence: next, acknowledgment: Self.ourISN + 1))
        #expect(socket.shutDown, "the guest's FIN shuts the socket's write side")
        #expect(host.take().last?.acknowledgment == next + 1, "the FIN is acknowledged")
        socket.incoming = [1, 2, 3]
        socket.ended = true
        connection.socketEvent(EventLoop.readable)
        #expect(host.take().map(\.payload.count) == [3], "the host's last bytes")
        connection.socketEvent(EventLoop.readable)  // still readable: the end of the stream
        #expect(host.take().map { $0.has(.fin) } == [true], "then our FIN")
        #expect(!connection.isClosed, "until the guest acknowledges our FIN")
        connection.handle(Self.guest(.ack, sequence: next + 1, acknowledgment: Self.ourISN + 1 + 3 + 1))
        #expect(connection.isClosed && host.closed.count == 1 && socket.closed && !socket.aborted)
        #expect(host.tcpBuffered == 0)
    }
}
