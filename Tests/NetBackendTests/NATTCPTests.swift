import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

/// The guest side of one TCP connection, driven by hand.
final class GuestConnection {
    let bench: NATBench
    let sourcePort: UInt16
    let remote: IPv4Endpoint
    var sequence: UInt32 = 1000
    var acknowledgment: UInt32 = 0

    init(_ bench: NATBench, from sourcePort: UInt16 = 45_000, to remote: IPv4Endpoint) {
        self.bench = bench
        self.sourcePort = sourcePort
        self.remote = remote
    }

    func send(flags: TCPFlags, window: UInt16 = 65_535, options: [UInt8] = [], payload: [UInt8] = []) {
        bench.sendIP(
            guestTCP(
                from: sourcePort, to: remote, sequence: sequence, acknowledgment: acknowledgment, flags: flags,
                window: window, options: options, payload: payload))
    }

    /// Segments for this connection, waiting until `filter` matches one (bounded).
    func segments(timeout: Double = 3, until filter: (TCPSegment) -> Bool = { _ in true }) -> [TCPSegment] {
        var result: [TCPSegment] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for packet in bench.receivePackets(timeout: 0.02, where: { $0.proto == IPProtocolNumber.tcp }) {
                #expect(
                    transportChecksum(
                        source: packet.source, destination: packet.destination, proto: 6, segment: packet.payload)
                        == 0)
                guard let segment = TCPSegment(packet.payload), segment.destinationPort == sourcePort else { continue }
                result.append(segment)
            }
            if result.contains(where: filter) { break }
        }
        return result
    }

    /// Opens the connection: SYN, SYN-ACK, ACK. Returns the SYN-ACK.
    func open(window: UInt16 = 65_535, shift: UInt8? = 7) -> TCPSegment? {
        var options: [UInt8] = [2, 4, 0x05, 0xB4]
        if let shift { options += [1, 3, 3, shift] }
        send(flags: .syn, window: window, options: options)
        guard let synAck = segments(until: { $0.has(.syn) }).first(where: { $0.has(.syn) }) else {
            return nil
        }
        sequence &+= 1
        acknowledgment = synAck.sequence &+ 1
        send(flags: .ack, window: window)
        return synAck
    }
}

@Suite("NAT TCP")
struct NATTCPTests {
    @Test("a guest connection to the gateway reaches a loopback server; data, half-close and teardown both ways")
    func connectTransferClose() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        let synAck = try #require(guest.open())
        #expect(synAck.has(.ack) && synAck.acknowledgment == 1001)
        #expect(synAck.mss == 1460)
        #expect(synAck.windowShift == 7)
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }

        guest.send(flags: [.ack, .psh], payload: Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(receiveBytes(server, count: 18) == Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let ack = guest.segments { $0.acknowledgment == 1019 }
        #expect(ack.contains { $0.acknowledgment == 1019 })
        guest.sequence &+= 18

        let body = [UInt8](repeating: 0x61, count: 5000)
        _ = body.withUnsafeBytes { Glibc.send(server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        for _ in 0..<20 where received.count < 5000 {
            for segment in guest.segments(until: { !$0.payload.isEmpty }) where !segment.payload.isEmpty {
                #expect(segment.sequence == guest.acknowledgment)
                #expect(segment.payload.count <= 1460)
                received += segment.payload
                guest.acknowledgment &+= UInt32(segment.payload.count)
            }
            guest.send(flags: .ack)
        }
        #expect(received == body)

        // The server closes its side: the guest sees a FIN after the data.
        Glibc.shutdown(server, Int32(SHUT_WR))
        let fin = guest.segments { $0.has(.fin) }
        #expect(fin.contains { $0.has(.fin) && $0.sequence == guest.acknowledgment })
        guest.acknowledgment &+= 1
        guest.send(flags: .ack)
        // The guest can still send after the host's FIN (half-close), then closes too.
        guest.send(flags: [.ack, .psh], payload: [1, 2, 3])
        #expect(receiveBytes(server, count: 3) == [1, 2, 3])
        guest.sequence &+= 3
        guest.send(flags: [.ack, .fin])
        #expect(
            guest.segments { $0.acknowledgment == guest.sequence &+ 1 }.contains {
                $0.acknowledgment == guest.sequence &+ 1
            })
        var byte: UInt8 = 0
        #expect(recv(server, &byte, 1, 0) == 0)  // EOF on the host side
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test("DNS over TCP to .3:53 reaches the configured resolver")
    func dnsOverTCP() throws {
        let resolver = LoopbackTCPListener()
        let bench = try NATBench(loopbackNATConfiguration(dns: [IPv4Endpoint(.loopback, resolver.port)]))
        let guest = GuestConnection(bench, to: IPv4Endpoint(natDNS, 53))
        let synAck = try #require(guest.open())
        #expect(synAck.sourcePort == 53)
        let server = resolver.accept()
        try #require(server >= 0)
        defer { close(server) }
        let query: [UInt8] = [0, 4, 0xAB, 0xCD, 1, 0]
        guest.send(flags: [.ack, .psh], payload: query)
        #expect(receiveBytes(server, count: query.count) == query)
        let response: [UInt8] = [0, 2, 0xAB, 0xCD]
        _ = Glibc.send(server, response, response.count, Int32(MSG_NOSIGNAL))
        let answer = guest.segments { !$0.payload.isEmpty }.first { !$0.payload.isEmpty }
        #expect(answer?.payload == [0, 2, 0xAB, 0xCD])
    }

    @Test("200 concurrent connections open, carry a byte each, and close without leaving a descriptor behind")
    func manyConnections() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let count = 200
        let remote = IPv4Endpoint(natGateway, listener.port)
        var accepted: [Int32] = []
        defer { for fd in accepted { close(fd) } }
        for index in 0..<count {
            bench.sendIP(
                guestTCP(
                    from: UInt16(20_000 + index), to: remote, sequence: 1, flags: .syn,
                    options: [2, 4, 0x05, 0xB4]))
            if index % 8 == 7 {
                for _ in 0..<8 {
                    let fd = listener.accept(timeout: 0.01)
                    if fd >= 0 { accepted.append(fd) }
                }
            }
        }
        for _ in 0..<500 where accepted.count < count {
            let fd = listener.accept(timeout: 0.01)
            if fd >= 0 { accepted.append(fd) }
        }
        #expect(accepted.count == count)
        var synAcks: [UInt16: UInt32] = [:]
        for _ in 0..<300 where synAcks.count < count {
            for packet in bench.receivePackets(timeout: 0.01, where: { $0.proto == 6 }) {
                if let segment = TCPSegment(packet.payload), segment.has(.syn) {
                    synAcks[segment.destinationPort] = segment.sequence
                }
            }
        }
        #expect(synAcks.count == count)
        #expect(bench.nat.flowCounts.tcp == count)
        for (port, theirs) in synAcks {
            bench.sendIP(
                guestTCP(
                    from: port, to: remote, sequence: 2, acknowledgment: theirs &+ 1,
                    flags: [.ack, .psh, .fin], payload: [0x2A]))
        }
        for fd in accepted { #expect(receiveBytes(fd, count: 2, timeout: 2) == [0x2A]) }
        for fd in accepted { Glibc.shutdown(fd, Int32(SHUT_WR)) }
        // Each host FIN reaches the guest; the guest acknowledges it and the connection is gone.
        var finished = 0
        for _ in 0..<300 where finished < count {
            for packet in bench.receivePackets(timeout: 0.01, where: { $0.proto == 6 }) {
                guard let segment = TCPSegment(packet.payload), segment.has(.fin) else { continue }
                bench.sendIP(
                    guestTCP(
                        from: segment.destinationPort, to: remote, sequence: 4, acknowledgment: segment.sequence &+ 1,
                        flags: .ack))
                finished += 1
            }
        }
        #expect(finished == count)
        #expect(bench.nat.flowCounts.tcp == 0)
        #expect(bench.nat.runtime.withEngine { $0.sockets.count } == 0)
        #expect(bench.nat.runtime.withEngine { $0.tcpBuffered } == 0)
    }

    @Test("a guest keepalive probe is answered and keeps the connection")
    func keepalive() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        _ = bench.port.drain()
        guest.sequence &-= 1
        guest.send(flags: .ack)
        guest.sequence &+= 1
        let answer = guest.segments(timeout: 1).first
        #expect(answer?.has(.ack) == true && answer?.acknowledgment == guest.sequence)
        #expect(bench.nat.flowCounts.tcp == 1)
    }

    @Test("a refused connect is answered with RST")
    func refused() throws {
        let closedPort: UInt16 = {
            let listener = LoopbackTCPListener()
            return listener.port
        }()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, closedPort))
        guest.send(flags: .syn, options: [2, 4, 0x05, 0xB4])
        let reset = guest.segments { $0.has(.rst) }.first { $0.has(.rst) }
        #expect(reset?.acknowledgment == 1001)
        #expect(bench.counter("tcp_refused") == 1)
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test("a destination the policy forbids is refused with RST and counted")
    func denied() throws {
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(IPv4Address(192, 0, 2, 7), 80))
        guest.send(flags: .syn)
        #expect(guest.segments(timeout: 0.2).contains { $0.has(.rst) })
        #expect(bench.counter("drop_policy_denied") == 1)
    }

    @Test("a segment for no connection is answered with RST; a stray RST is not")
    func noConnection() throws {
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, 9))
        guest.acknowledgment = 777
        guest.send(flags: .ack, payload: [1])
        let reset = guest.segments(timeout: 0.2).first
        #expect(reset?.has(.rst) == true && reset?.sequence == 777)
        guest.send(flags: .rst)
        #expect(guest.segments(timeout: 0.1).isEmpty)
        #expect(bench.counter("drop_tcp_no_flow") == 2)
    }

    @Test("host to guest: the NAT reads only what the guest's window allows")
    func hostToGuestFlowControl() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open(window: 4096, shift: nil))
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        let blob = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let writer = Thread {
            _ = blob.withUnsafeBytes { Glibc.send(server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        writer.start()
        var received: [UInt8] = []
        for segment in guest.segments(timeout: 0.3, until: { _ in false }) { received += segment.payload }
        #expect(received.count == 4096)
        let buffered = bench.nat.runtime.withEngine { $0.tcpFlows.values.map(\.buffered).max() ?? 0 }
        #expect(buffered <= 4096)
        // Acknowledge as we go: the rest arrives, in order, never beyond the window.
        var acknowledged = received.count
        guest.acknowledgment &+= UInt32(acknowledged)
        for _ in 0..<1000 where acknowledged < blob.count {
            guest.send(flags: .ack, window: 4096)
            var got = 0
            for segment in guest.segments(timeout: 1, until: { !$0.payload.isEmpty }) where !segment.payload.isEmpty {
                guard segment.sequence == guest.acknowledgment &+ UInt32(got) else { continue }
                received += segment.payload
                got += segment.payload.count
            }
            #expect(got <= 4096)
            acknowledged += got
            guest.acknowledgment &+= UInt32(got)
        }
        #expect(received == blob)
    }

    @Test("guest to host: only what the host socket accepted is acknowledged")
    func guestToHostFlowControl() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        // The server reads nothing; the guest pushes (large super-frames) regardless of the window it is offered,
        // resending from the last acknowledged byte as a guest does after a timeout, until acknowledgments stop.
        let chunk = (0..<(251 * 239)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let start = guest.sequence
        var highestAck = start
        var zeroWindow = false
        var stalled = 0
        for _ in 0..<400 where stalled < 5 {
            let offset = Int(highestAck &- start) % 251
            let payload = Array(chunk[offset...]) + Array(chunk[..<offset])
            guest.send(flags: .ack, payload: payload)
            var advanced = false
            for segment in bench.queuedPackets().compactMap({ TCPSegment($0.payload) }) {
                if segment.window == 0 { zeroWindow = true }
                if sequenceLess(highestAck, segment.acknowledgment) {
                    highestAck = segment.acknowledgment
                    advanced = true
                }
            }
            stalled = advanced ? 0 : stalled + 1
            guest.sequence = highestAck
        }
        let accepted = Int(highestAck &- start)
        #expect(stalled == 5, "acknowledgments never stopped: the NAT buffers without bound")
        #expect(zeroWindow)
        #expect(bench.counter("tcp_send_partial") > 0)
        let held = bench.nat.runtime.withEngine { $0.tcpFlows.values.map(\.pendingCount).max() ?? 0 }
        #expect(held <= NATLimits().tcpGuestSlackPerFlow)
        // The guest finishes while bytes may still be pending: the host sees them all, then the end of the stream.
        guest.send(flags: [.ack, .fin])
        // Everything acknowledged reaches the server, in order, and nothing more.
        let available = receiveBytes(server, count: accepted, timeout: 10)
        #expect(available.count == accepted)
        var end: UInt8 = 0
        #expect(recv(server, &end, 1, 0) == 0)
        let period = [UInt8](chunk[0..<251])
        let matches = available.withUnsafeBytes { bytes in
            period.withUnsafeBytes { pattern in
                stride(from: 0, to: bytes.count, by: 251).allSatisfy { start in
                    memcmp(bytes.baseAddress! + start, pattern.baseAddress!, min(251, bytes.count - start)) == 0
                }
            }
        }
        #expect(matches)
    }

    @Test("unacknowledged data is retransmitted after the timeout")
    func retransmission() throws {
        let listener = LoopbackTCPListener()
        var configuration = loopbackNATConfiguration()
        configuration.timeouts.tcpRetransmit = 0.05
        let bench = try NATBench(configuration)
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        _ = Glibc.send(server, "ping", 4, Int32(MSG_NOSIGNAL))
        let first = guest.segments { !$0.payload.isEmpty }.filter { !$0.payload.isEmpty }
        #expect(first.count == 1)
        let again = guest.segments { !$0.payload.isEmpty }.filter { !$0.payload.isEmpty }
        #expect(again.first?.sequence == first.first?.sequence && again.first?.payload == Array("ping".utf8))
        #expect(bench.counter("tcp_retransmits") >= 1)
    }

    @Test("a host reset reaches the guest as RST; a guest RST resets the host socket")
    func resets() throws {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        HostSocket.abort(server)
        close(server)
        #expect(guest.segments { $0.has(.rst) }.contains { $0.has(.rst) })
        #expect(bench.nat.flowCounts.tcp == 0)

        let second = GuestConnection(bench, from: 45_001, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(second.open())
        let other = listener.accept()
        try #require(other >= 0)
        defer { close(other) }
        second.send(flags: [.rst, .ack])
        var byte: UInt8 = 0
        var poll = pollfd(fd: other, events: Int16(POLLIN), revents: 0)
        _ = Glibc.poll(&poll, 1, 2000)
        #expect(recv(other, &byte, 1, 0) == -1 && errno == ECONNRESET)
    }

    @Test("a connection idle past the timeout is reset")
    func idleTimeout() throws {
        let listener = LoopbackTCPListener()
        let clock = Shared<UInt64>(1_000_000_000)
        let nat = try NATAttachment(configuration: loopbackNATConfiguration(), clock: { clock.value })
        let bench = try NATBench()  // for its helpers only
        _ = bench
        defer { nat.close() }
        let port = FramePort()
        port.attach(nat)
        port.send(
            ethernetFrame(
                to: nat.configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4,
                payload: guestTCP(
                    from: 45_000, to: IPv4Endpoint(natGateway, listener.port), sequence: 1, flags: .syn)))
        let server = listener.accept()
        defer { close(server) }
        for _ in 0..<200 where nat.runtime.withEngine({ $0.tcpFlows.values.first?.state }) != .established {
            usleep(5000)
        }
        #expect(nat.flowCounts.tcp == 1)
        clock.withLock { $0 += 7201 * 1_000_000_000 }
        nat.runtime.runTimers()
        #expect(nat.flowCounts.tcp == 0)
        #expect(nat.counter("tcp_flows_timed_out") == 1)
    }
}
