import Foundation
import Glibc
import NICCore
import Testing

@testable import NetBackend

/// lo's directed broadcast: on Linux a datagram to it (with `SO_BROADCAST`) reaches every socket bound to the
/// wildcard address on its port, so the tests use it as the host network's broadcast and never leave loopback.
private let loopbackBroadcast = IPv4Address(127, 255, 255, 255)

/// A UDP socket bound to the wildcard address (on `port`, or a free one) that may send broadcasts.
private final class BroadcastSocket {
    let fd: Int32
    let port: UInt16

    init(port: UInt16 = 0) {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        HostSocket.setOption(fd, SOL_SOCKET, SO_BROADCAST, 1)
        _ = HostSocket.bind(fd, to: IPv4Endpoint(.any, port))
        self.port = HostSocket.localEndpoint(fd)?.port ?? 0
    }

    deinit { close(fd) }

    /// Sends `payload` to `destination`; `true` when the kernel took it.
    @discardableResult
    func send(_ payload: [UInt8], to destination: IPv4Endpoint) -> Bool {
        HostSocket.send(fd, payload, to: destination) == payload.count
    }

    /// The next datagram and its sender, waiting up to `timeout` seconds.
    func receive(timeout: Double = 3) -> ([UInt8], IPv4Endpoint)? {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let (count, sender) = buffer.withUnsafeMutableBytes { HostSocket.receive(fd, into: $0) }
        guard count >= 0, let sender else { return nil }
        return (Array(buffer[0..<count]), sender)
    }
}

/// A port nobody uses now: bound, read, closed.
private func unusedPort() -> UInt16 {
    BroadcastSocket().port
}

/// The IPv4 packet in `frame` when it is a UDP broadcast frame (to ff:ff:ff:ff:ff:ff).
private func broadcastUDP(in frame: [UInt8]) -> IPv4Packet? {
    guard frame.count >= 14,
        MACAddress(rawValue: UInt64(frame.bigEndian16(at: 0)) << 32 | UInt64(frame.bigEndian32(at: 2))) == .broadcast,
        frame.bigEndian16(at: 12) == EtherType.ipv4, let packet = try? IPv4Packet(parsing: frame, at: 14),
        packet.proto == IPProtocolNumber.udp
    else { return nil }
    return packet
}

/// Frames for the guest that are UDP broadcasts, collected for up to `timeout` seconds (until one arrives).
private func broadcastFrames(_ port: FramePort, timeout: Double) -> [IPv4Packet] {
    let deadline = Date().addingTimeInterval(timeout)
    var found: [IPv4Packet] = []
    while found.isEmpty, Date() < deadline {
        found += port.drain().compactMap(broadcastUDP(in:))
        if found.isEmpty { usleep(2000) }
    }
    return found
}

/// The guest sends one datagram from `guestPort` to a loopback server through the gateway and waits for the echo;
/// returns the host port the NAT used, as the server saw it.
private func openGuestPort(_ guestPort: UInt16, server: LoopbackUDPServer, send: ([UInt8]) -> Void, port: FramePort)
    -> UInt16?
{
    send(guestUDP(from: guestPort, to: IPv4Endpoint(natGateway, server.port), payload: Array("hi".utf8)))
    let deadline = Date().addingTimeInterval(3)
    var echoed = false
    while !echoed, Date() < deadline {
        echoed = port.drain().contains { frame in
            guard let packet = try? IPv4Packet(parsing: frame, at: 14) else { return false }
            return packet.proto == IPProtocolNumber.udp && packet.payload.bigEndian16(at: 2) == guestPort
        }
        if !echoed { usleep(2000) }
    }
    guard echoed else { return nil }
    return server.senders.value.first?.port
}

@Suite("NAT UDP broadcasts")
struct NATUDPBroadcastTests {
    @Test("a host broadcast to the port of a guest port that sent recently reaches the guest as a broadcast frame")
    func broadcastReachesRecentPort() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        let bench = try NATBench()
        let hostPort = try #require(openGuestPort(40_100, server: server, send: { bench.sendIP($0) }, port: bench.port))
        let sender = BroadcastSocket()
        #expect(sender.send(Array("announce".utf8), to: IPv4Endpoint(loopbackBroadcast, hostPort)))
        let packet = try #require(broadcastFrames(bench.port, timeout: 3).first)
        // lo's directed broadcast becomes the guest network's; the loopback sender appears as the gateway.
        #expect(packet.destination == IPv4Address(10, 0, 2, 255))
        #expect(packet.source == natGateway)
        #expect(packet.payload.bigEndian16(at: 0) == sender.port && packet.payload.bigEndian16(at: 2) == 40_100)
        #expect(Array(packet.payload[8...]) == Array("announce".utf8))
        #expect(packet.payload.bigEndian16(at: 6) != 0)
        #expect(
            transportChecksum(
                source: packet.source, destination: packet.destination, proto: IPProtocolNumber.udp,
                segment: packet.payload) == 0)
        // The IP header checksum: IPv4Packet(parsing:) refuses a frame whose header does not sum to zero.
        var headerSum = InternetChecksum()
        headerSum.add(packet.header)
        #expect(headerSum.value == 0)
        #expect(bench.counter("udp_broadcasts_delivered") == 1)
    }

    @Test("a broadcast to a port the guest never sent from does not arrive; a stranger's unicast is counted")
    func broadcastOnUnusedPort() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        let bench = try NATBench()
        let hostPort = try #require(openGuestPort(40_101, server: server, send: { bench.sendIP($0) }, port: bench.port))
        let sender = BroadcastSocket()
        var other = unusedPort()
        if other == hostPort { other = unusedPort() }
        #expect(sender.send([1, 2, 3], to: IPv4Endpoint(loopbackBroadcast, other)))
        #expect(broadcastFrames(bench.port, timeout: 0.3).isEmpty)
        // A unicast to the guest port's host port from an endpoint the guest never sent to is unsolicited.
        #expect(sender.send([4, 5, 6], to: IPv4Endpoint(.loopback, hostPort)))
        let deadline = Date().addingTimeInterval(3)
        while bench.counter("drop_udp_unsolicited") == 0, Date() < deadline { usleep(2000) }
        #expect(bench.counter("drop_udp_unsolicited") == 1)
        #expect(bench.queuedPackets().isEmpty)
        #expect(bench.counter("udp_broadcasts_delivered") == 0)
    }

    @Test("a guest port stops receiving broadcasts once it has been idle for the UDP idle time")
    func broadcastPortExpires() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        let clock = Shared<UInt64>(1_000_000_000)
        let nat = try NATAttachment(configuration: loopbackNATConfiguration(), clock: { clock.value })
        defer { nat.close() }
        let port = FramePort(queueCapacity: 4096)
        port.attach(nat)
        defer { port.detach() }
        let send: ([UInt8]) -> Void = { packet in
            port.send(
                ethernetFrame(
                    to: nat.configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4, payload: packet))
        }
        let hostPort = try #require(openGuestPort(40_102, server: server, send: send, port: port))
        let sender = BroadcastSocket()
        // Still open just before the idle time.
        clock.withLock { $0 += 179_000_000_000 }
        nat.runtime.runTimers()
        #expect(sender.send([1], to: IPv4Endpoint(loopbackBroadcast, hostPort)))
        #expect(broadcastFrames(port, timeout: 3).count == 1)
        // Past it: a broadcast that finds the socket still open is dropped, then the timers close it.
        usleep(50_000)
        clock.withLock { $0 += 2_000_000_000 }
        #expect(sender.send([2], to: IPv4Endpoint(loopbackBroadcast, hostPort)))
        #expect(broadcastFrames(port, timeout: 0.3).isEmpty)
        #expect(nat.counter("drop_udp_broadcast_idle") == 1)
        nat.runtime.runTimers()
        #expect(nat.counter("udp_broadcast_ports_expired") == 1)
        #expect(sender.send([3], to: IPv4Endpoint(loopbackBroadcast, hostPort)))
        #expect(broadcastFrames(port, timeout: 0.3).isEmpty)
        #expect(nat.counter("udp_broadcasts_delivered") == 1)
    }

    @Test("the guest's broadcasts go to the configured host broadcast address, and unicast answers come back")
    func guestBroadcastOut() throws {
        var configuration = loopbackNATConfiguration()
        configuration.hostBroadcast = loopbackBroadcast
        configuration.allowedDestinations = [IPv4Network(address: loopbackBroadcast, prefixLength: 32)!]
        let bench = try NATBench(configuration)
        let responder = BroadcastSocket()
        for (index, destination) in [IPv4Address.broadcast, IPv4Address(10, 0, 2, 255)].enumerated() {
            let guestPort = UInt16(40_103 + index)
            bench.sendIP(
                guestUDP(from: guestPort, to: IPv4Endpoint(destination, responder.port), payload: [UInt8(index)]),
                to: .broadcast)
            let (query, asker) = try #require(responder.receive())
            #expect(query == [UInt8(index)])
            #expect(responder.send([0xA0 + UInt8(index)], to: IPv4Endpoint(.loopback, asker.port)))
            let answer = try #require(
                bench.receivePackets { $0.proto == IPProtocolNumber.udp && $0.payload.bigEndian16(at: 2) == guestPort }
                    .first)
            #expect(answer.destination == natGuestIP && answer.source == natGateway)
            #expect(
                answer.payload.bigEndian16(at: 0) == responder.port
                    && Array(answer.payload[8...]) == [0xA0 + UInt8(index)])
        }
        #expect(bench.counter("udp_broadcast_answers") == 2)
    }

    @Test("the guest's broadcasts honour restrict mode, host loopback safety, and a host broadcast turned off")
    func guestBroadcastPolicy() throws {
        let responder = BroadcastSocket()
        let query = { (port: UInt16) in
            guestUDP(from: port, to: IPv4Endpoint(.broadcast, responder.port), payload: [9])
        }
        // restrict without the address allowed
        var restricted = loopbackNATConfiguration()
        restricted.hostBroadcast = loopbackBroadcast
        let first = try NATBench(restricted)
        first.sendIP(query(40_110), to: .broadcast)
        #expect(first.counter("drop_policy_denied") == 1)
        // loopback without localhostReachable
        var closed = loopbackNATConfiguration()
        closed.restrict = false
        closed.localhostReachable = false
        closed.hostBroadcast = loopbackBroadcast
        let second = try NATBench(closed)
        second.sendIP(query(40_111), to: .broadcast)
        #expect(second.counter("drop_policy_loopback") == 1)
        // off, the default: a guest's broadcasts never leave the host unless the host asks
        var off = loopbackNATConfiguration()
        off.restrict = false
        #expect(off.hostBroadcast == nil)
        let third = try NATBench(off)
        third.sendIP(query(40_112), to: .broadcast)
        #expect(third.counter("drop_ip_destination") == 1)
        #expect(responder.receive(timeout: 0.2) == nil)
        // No ICMP error answers a broadcast.
        #expect(first.queuedPackets().isEmpty && second.queuedPackets().isEmpty && third.queuedPackets().isEmpty)
    }
}
