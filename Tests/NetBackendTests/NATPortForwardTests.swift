import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("NAT port forwarding")
struct NATPortForwardTests {
    @Test(
        "rules parse in VirtualBox's syntax",
        arguments: [
            ("guestssh,tcp,,2222,,22", "guestssh,tcp,,2222,,22"),
            ("web,TCP,127.0.0.1,8080,10.0.2.15,80", "web,tcp,127.0.0.1,8080,10.0.2.15,80"),
            ("dns,udp,[127.0.0.1],5353,[],53", "dns,udp,127.0.0.1,5353,,53"),
            (" x , udp , , 1 , , 65535 ", "x,udp,,1,,65535"),
            ("web6,tcp,[::1],8080,,80", "web6,tcp,[::1],8080,,80"),
            ("web6,tcp,::1,8080,,80", "web6,tcp,[::1],8080,,80"),
            ("all6,udp,[::],53,[fd17:625c:f037:2::15],53", "all6,udp,[::],53,[fd17:625c:f037:2::15],53"),
        ])
    func parse(text: String, canonical: String) throws {
        #expect(try PortForwardRule(parsing: text).description == canonical)
    }

    @Test(
        "malformed rules say which field is wrong",
        arguments: [
            ("guestssh,tcp,,2222,22", "expected 6"), ("a,sctp,,1,,2", "neither tcp nor udp"),
            ("a,tcp,,0,,2", "host port"), ("a,tcp,,1,,70000", "guest port"), ("a,tcp,1.2.3,1,,2", "host address"),
            ("a,tcp,,1,10.0.2.256,2", "guest address"), (",tcp,,1,,2", "name"), ("a b,tcp,,1,,2", "name"),
            ("a,tcp,::1,1,10.0.2.15,2", "differ in IP version"), ("a,tcp,[::1::],1,,2", "host address"),
        ])
    func malformed(text: String, reason: String) {
        do {
            _ = try PortForwardRule(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains(text))
        }
    }

    /// A free loopback TCP port (bound, read, closed).
    static func freePort(_ type: Int32 = HostSocket.stream) -> UInt16 {
        let fd = socket(AF_INET, type, 0)
        defer { close(fd) }
        _ = HostSocket.bind(fd, to: IPv4Endpoint(.loopback, 0))
        return HostSocket.localEndpoint(fd)?.port ?? 0
    }

    @Test("rules are added and deleted at run time; a port in use, a taken name or a privileged port is a clear error")
    func addDelete() throws {
        let bench = try NATBench()
        let port = Self.freePort()
        let rule = PortForwardRule(name: "web", transport: .tcp, hostAddress: .loopback, hostPort: port, guestPort: 80)
        try bench.nat.addPortForward(rule)
        #expect(bench.nat.portForwards == [rule])
        #expect(throws: NATError.ruleName("web", reason: "a rule with this name exists")) {
            try bench.nat.addPortForward(rule)
        }
        var clash = rule
        clash.name = "clash"
        do {
            try bench.nat.addPortForward(clash)
            Issue.record("a second listener on \(port) was allowed")
        } catch {
            #expect(error.description.contains("in use"))
        }
        bench.nat.runtime.withEngine { $0.isPrivileged = false }
        do {
            try bench.nat.addPortForward(
                PortForwardRule(name: "low", transport: .tcp, hostAddress: .loopback, hostPort: 80, guestPort: 80))
            Issue.record("port 80 was bound without privilege")
        } catch {
            #expect(error.description.contains("needs privilege"))
        }
        // The first rule still works: its port still refuses a second bind.
        #expect(bench.nat.portForwards.map(\.name) == ["web"])
        try bench.nat.removePortForward(named: "web")
        #expect(bench.nat.portForwards.isEmpty)
        #expect(throws: NATError.self) { try bench.nat.removePortForward(named: "web") }
        try bench.nat.addPortForward(clash)  // the port is free again
    }

    @Test("a host connection to a TCP forward becomes a guest connection from the gateway")
    func tcpForward() throws {
        let hostPort = Self.freePort()
        var configuration = loopbackNATConfiguration()
        configuration.portForwards = [
            PortForwardRule(name: "ssh", transport: .tcp, hostAddress: .loopback, hostPort: hostPort, guestPort: 22)
        ]
        let bench = try NATBench(configuration)
        // The guest has shown itself (DHCP or any packet) before the host connects.
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1)))
        _ = bench.port.drain()

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = Shared<Int32>(-1)
        let connector = Thread {
            connected.withLock { $0 = HostSocket.connect(client, to: IPv4Endpoint(.loopback, hostPort)) }
        }
        connector.start()
        let syn = try #require(
            bench.receivePackets { $0.proto == 6 }.compactMap { TCPSegment($0.payload) }.first)
        #expect(syn.has(.syn) && !syn.has(.ack) && syn.destinationPort == 22)
        #expect(syn.mss == 1460 && syn.windowShift == 7)
        let remote = IPv4Endpoint(natGateway, syn.sourcePort)
        // The guest accepts: SYN-ACK, then the NAT's ACK.
        var synAck: [UInt8] = []
        synAck = guestTCP(
            from: 22, to: remote, sequence: 5000, acknowledgment: syn.sequence &+ 1, flags: [.syn, .ack],
            options: [2, 4, 0x05, 0xB4])
        bench.sendIP(synAck)
        let ack = try #require(
            bench.receivePackets { $0.proto == 6 }.compactMap { TCPSegment($0.payload) }.first)
        #expect(ack.has(.ack) && ack.acknowledgment == 5001)
        for _ in 0..<200 where connected.value != 0 { usleep(5000) }
        #expect(connected.value == 0)
        // Data from the guest reaches the host client.
        bench.sendIP(
            guestTCP(
                from: 22, to: remote, sequence: 5001, acknowledgment: syn.sequence &+ 1,
                flags: [.ack, .psh], payload: Array("SSH-2.0-vnic\r\n".utf8)))
        #expect(receiveBytes(client, count: 14) == Array("SSH-2.0-vnic\r\n".utf8))
        #expect(bench.counter("forward_accepted") == 1)
    }

    @Test("a guest that answers a forwarded SYN with RST closes the host connection")
    func tcpForwardRefusedByGuest() throws {
        let hostPort = Self.freePort()
        var configuration = loopbackNATConfiguration()
        configuration.portForwards = [
            PortForwardRule(name: "x", transport: .tcp, hostAddress: .loopback, hostPort: hostPort, guestPort: 23)
        ]
        let bench = try NATBench(configuration)
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1)))
        _ = bench.port.drain()
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        #expect(HostSocket.connect(client, to: IPv4Endpoint(.loopback, hostPort)) == 0)
        let syn = try #require(
            bench.receivePackets { $0.proto == 6 }.compactMap { TCPSegment($0.payload) }.first)
        bench.sendIP(
            guestTCP(
                from: 23, to: IPv4Endpoint(natGateway, syn.sourcePort), sequence: 0,
                acknowledgment: syn.sequence &+ 1, flags: [.rst, .ack]))
        var byte: UInt8 = 0
        var poll = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        _ = Glibc.poll(&poll, 1, 2000)
        #expect(recv(client, &byte, 1, 0) <= 0)
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test("a UDP forward carries datagrams both ways")
    func udpForward() throws {
        let hostPort = Self.freePort(HostSocket.datagram)
        var configuration = loopbackNATConfiguration()
        configuration.portForwards = [
            PortForwardRule(name: "dns", transport: .udp, hostAddress: .loopback, hostPort: hostPort, guestPort: 53)
        ]
        let bench = try NATBench(configuration)
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1)))
        _ = bench.port.drain()
        let client = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(client) }
        _ = HostSocket.bind(client, to: IPv4Endpoint(.loopback, 0))
        let clientPort = HostSocket.localEndpoint(client)?.port ?? 0
        _ = HostSocket.send(client, [1, 2, 3], to: IPv4Endpoint(.loopback, hostPort))
        let inbound = try #require(bench.receivePackets { $0.proto == 17 }.first)
        #expect(inbound.source == natGateway && inbound.destination == natGuestIP)
        #expect(inbound.payload.bigEndian16(at: 0) == clientPort && inbound.payload.bigEndian16(at: 2) == 53)
        #expect(Array(inbound.payload[8...]) == [1, 2, 3])
        bench.sendIP(guestUDP(from: 53, to: IPv4Endpoint(natGateway, clientPort), payload: [4, 5]))
        #expect(receiveBytes(client, count: 2) == [4, 5])
    }
}
