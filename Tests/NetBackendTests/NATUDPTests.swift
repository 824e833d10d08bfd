import Glibc
import NICCore
import Synchronization
import Testing

@testable import NetBackend

@Suite("NAT UDP and the DNS proxy")
struct NATUDPTests {
    @Test("a datagram to the gateway reaches a host loopback server, and its answer comes back")
    func udpThroughGateway() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        let bench = try NATBench()
        bench.sendIP(guestUDP(from: 40_000, to: IPv4Endpoint(natGateway, server.port), payload: Array("hello".utf8)))
        let reply = try #require(bench.receivePackets { $0.proto == IPProtocolNumber.udp }.first)
        #expect(reply.source == natGateway && reply.destination == natGuestIP)
        #expect(reply.payload.bigEndian16(at: 0) == server.port && reply.payload.bigEndian16(at: 2) == 40_000)
        #expect(Array(reply.payload[8...]) == Array("hello".utf8))
        #expect(
            transportChecksum(source: reply.source, destination: reply.destination, proto: 17, segment: reply.payload)
                == 0)
        #expect(server.received.value == [Array("hello".utf8)])
        #expect(bench.nat.flowCounts.udp == 1)
    }

    @Test("without localhostReachable the gateway does not lead to host loopback")
    func gatewayLoopbackClosed() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        var configuration = loopbackNATConfiguration()
        configuration.localhostReachable = false
        let bench = try NATBench(configuration)
        bench.sendIP(guestUDP(from: 40_000, to: IPv4Endpoint(natGateway, server.port), payload: [1]))
        let error = try #require(bench.receivePackets(timeout: 0.3).first)
        #expect(error.proto == 1 && error.payload[0] == 3 && error.payload[1] == 13)
        #expect(bench.counter("drop_policy_loopback") == 1)
        // Loopback addressed directly is refused too.
        bench.sendIP(guestUDP(from: 40_001, to: IPv4Endpoint(.loopback, server.port), payload: [2]))
        #expect(bench.counter("drop_policy_loopback") == 2)
        usleep(50_000)
        #expect(server.received.value.isEmpty)
    }

    @Test("a datagram to a closed loopback port earns 'port unreachable'")
    func portUnreachable() throws {
        let bench = try NATBench()
        // A port nobody listens on: bind, read the number, close.
        let probe = LoopbackUDPServer()
        let closedPort = probe.port
        probe.stop()
        bench.sendIP(guestUDP(from: 40_002, to: IPv4Endpoint(natGateway, closedPort), payload: [1, 2, 3]))
        // The refusal surfaces on the next send or receive of the connected socket.
        usleep(20_000)
        bench.sendIP(guestUDP(from: 40_002, to: IPv4Endpoint(natGateway, closedPort), payload: [4, 5, 6]))
        let error = try #require(bench.receivePackets { $0.proto == 1 }.first)
        #expect(error.payload[0] == 3 && error.payload[1] == 3)
        #expect(error.payload.bigEndian16(at: 8 + 20 + 2) == closedPort)
    }

    @Test("the DNS proxy at .3 forwards to the configured resolver and answers from .3:53")
    func dnsProxyUDP() throws {
        let resolver = LoopbackUDPServer { query in
            var answer = query
            if answer.count > 2 { answer[2] |= 0x80 }  // QR: a response
            return answer
        }
        defer { resolver.stop() }
        let bench = try NATBench(loopbackNATConfiguration(dns: [IPv4Endpoint(.loopback, resolver.port)]))
        let query: [UInt8] =
            [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 4] + Array("vnic".utf8) + [0, 0, 1, 0, 1]
        bench.sendIP(guestUDP(from: 33_333, to: IPv4Endpoint(natDNS, 53), payload: query))
        let reply = try #require(bench.receivePackets { $0.proto == 17 }.first)
        #expect(
            reply.source == natDNS && reply.payload.bigEndian16(at: 0) == 53
                && reply.payload.bigEndian16(at: 2) == 33_333)
        #expect(reply.payload.bigEndian16(at: 8) == 0xABCD && reply.payload[10] & 0x80 != 0)
        #expect(resolver.received.value.first == query)
    }

    @Test("a resolver that refuses is skipped: the query goes to the next one")
    func dnsFailover() throws {
        let resolver = LoopbackUDPServer()
        defer { resolver.stop() }
        let dead = LoopbackUDPServer()
        let deadPort = dead.port
        dead.stop()
        let bench = try NATBench(
            loopbackNATConfiguration(dns: [IPv4Endpoint(.loopback, deadPort), IPv4Endpoint(.loopback, resolver.port)]))
        let query: [UInt8] = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        bench.sendIP(guestUDP(from: 33_334, to: IPv4Endpoint(natDNS, 53), payload: query))
        let reply = try #require(bench.receivePackets { $0.proto == 17 }.first)
        #expect(reply.source == natDNS && Array(reply.payload[8...]) == query)
        #expect(bench.counter("dns_failovers") == 1)
    }

    @Test("an IPv6 resolver on [::1] serves the DNS proxy, for IPv4 and IPv6 guests")
    func dnsProxyIPv6Resolver() throws {
        let resolver = try #require(LoopbackSocket6(tcp: false), "the host has no IPv6 loopback")
        let bench = try NATBench(loopbackNATConfiguration(resolvers: [IPEndpoint(.v6(.loopback), resolver.port)]))
        let query: [UInt8] = [0x66, 0x01, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        bench.sendIP(guestUDP(from: 33_340, to: IPv4Endpoint(natDNS, 53), payload: query))
        #expect(resolver.echoOnce() == query)
        let reply = try #require(bench.receivePackets { $0.proto == 17 }.first)
        #expect(reply.source == natDNS && reply.destination == natGuestIP)
        #expect(
            reply.payload.bigEndian16(at: 0) == 53 && reply.payload.bigEndian16(at: 2) == 33_340
                && Array(reply.payload[8...]) == query)
        // The same resolver behind the IPv6 proxy address.
        bench.sendIP6(guestUDP6(from: 33_341, to: IPEndpoint(.v6(natDNS6), 53), payload: query))
        #expect(resolver.echoOnce() == query)
        let reply6 = try #require(bench.receivePackets6 { $0.nextHeader == 17 }.first)
        #expect(
            reply6.packet.source == natDNS6 && reply6.packet.payload.bigEndian16(at: 0) == 53
                && Array(reply6.packet.payload[8...]) == query)
    }

    @Test("a refusing IPv4 resolver fails over to an IPv6 one")
    func dnsFailoverToIPv6() throws {
        let resolver = try #require(LoopbackSocket6(tcp: false), "the host has no IPv6 loopback")
        let dead = LoopbackUDPServer()
        let deadPort = dead.port
        dead.stop()
        let bench = try NATBench(
            loopbackNATConfiguration(resolvers: [
                IPEndpoint(.v4(.loopback), deadPort), IPEndpoint(.v6(.loopback), resolver.port),
            ]))
        let query: [UInt8] = [0x66, 0x02, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        bench.sendIP(guestUDP(from: 33_342, to: IPv4Endpoint(natDNS, 53), payload: query))
        #expect(resolver.echoOnce() == query)
        let reply = try #require(bench.receivePackets { $0.proto == 17 }.first)
        #expect(reply.source == natDNS && Array(reply.payload[8...]) == query)
        #expect(bench.counter("dns_failovers") == 1)
    }

    @Test("resolvers of both families parse in settings: IP, IP:PORT, IPV6, [IPV6]:PORT")
    func resolverSyntax() throws {
        #expect(IPEndpoint("10.0.0.1", defaultPort: 53) == IPEndpoint(.v4(IPv4Address(10, 0, 0, 1)), 53))
        #expect(IPEndpoint("10.0.0.1:5353", defaultPort: 53) == IPEndpoint(.v4(IPv4Address(10, 0, 0, 1)), 5353))
        #expect(IPEndpoint("::1", defaultPort: 53) == IPEndpoint(.v6(.loopback), 53))
        #expect(IPEndpoint("[::1]", defaultPort: 53) == IPEndpoint(.v6(.loopback), 53))
        #expect(IPEndpoint("[::1]:5353", defaultPort: 53) == IPEndpoint(.v6(.loopback), 5353))
        for bad in ["[::1]:", "[::1]:0", "[::1]x", "::1:99999", "1.2.3.4:", "", "[]:53"] {
            #expect(IPEndpoint(bad, defaultPort: 53) == nil, "\(bad)")
        }
        guard case .nat(let configuration) = try AttachmentSetting(parsing: "nat:dns=[::1]:5353;dns=127.0.0.53") else {
            Issue.record("the setting did not parse")
            return
        }
        #expect(configuration.dnsServers.map(\.description) == ["[::1]:5353", "127.0.0.53:53"])
    }

    @Test("the DNS address answers nothing but port 53; no resolver configured is counted")
    func dnsOtherPorts() throws {
        let bench = try NATBench()
        bench.sendIP(guestUDP(from: 1000, to: IPv4Endpoint(natDNS, 54), payload: [0]))
        let error = try #require(bench.port.drain().first)
        let packet = try IPv4Packet(parsing: error, at: 14)
        #expect(packet.payload[0] == 3 && packet.payload[1] == 3)
        bench.sendIP(guestUDP(from: 1000, to: IPv4Endpoint(natDNS, 53), payload: [0]))
        #expect(bench.counter("dns_no_server") == 1)
    }

    @Test("UDP flows expire after the idle timeout and their sockets close")
    func udpExpiry() throws {
        // The server answers nothing: an answer reaching the NAT after the clock moved would refresh the flow.
        let server = LoopbackUDPServer { _ in nil }
        defer { server.stop() }
        let clock = Shared<UInt64>(1_000_000_000)
        let nat = try NATAttachment(configuration: loopbackNATConfiguration(), clock: { clock.value })
        defer { nat.close() }
        let port = FramePort()
        port.attach(nat)
        port.send(
            ethernetFrame(
                to: nat.configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4,
                payload: guestUDP(from: 40_000, to: IPv4Endpoint(natGateway, server.port), payload: [1])))
        #expect(nat.flowCounts.udp == 1)
        for _ in 0..<300 where server.received.value.isEmpty { usleep(10_000) }
        #expect(server.received.value.count == 1)
        clock.withLock { $0 += 179_000_000_000 }
        nat.runtime.runTimers()
        #expect(nat.flowCounts.udp == 1)
        clock.withLock { $0 += 2_000_000_000 }
        nat.runtime.runTimers()
        #expect(nat.flowCounts.udp == 0)
        #expect(nat.counter("udp_flows_expired") == 1)
    }

    @Test("the flow limit holds and is counted")
    func udpFlowLimit() throws {
        let server = LoopbackUDPServer()
        defer { server.stop() }
        var configuration = loopbackNATConfiguration()
        configuration.limits.udpFlows = 4
        let bench = try NATBench(configuration)
        for source in UInt16(2000)..<2010 {
            bench.sendIP(guestUDP(from: source, to: IPv4Endpoint(natGateway, server.port), payload: [1]))
        }
        #expect(bench.nat.flowCounts.udp == 4)
        #expect(bench.counter("drop_udp_flow_limit") == 6)
    }

    @Test("a large reply is fragmented to the MTU for the guest")
    func largeReplyFragmented() throws {
        let server = LoopbackUDPServer { _ in [UInt8](repeating: 0x5A, count: 4000) }
        defer { server.stop() }
        let bench = try NATBench()
        bench.sendIP(guestUDP(from: 40_010, to: IPv4Endpoint(natGateway, server.port), payload: [1]))
        let fragments = bench.receivePackets(atLeast: 3) { $0.proto == 17 }
        #expect(fragments.count == 3)
        #expect(fragments.allSatisfy { $0.header.count + $0.payload.count <= 1500 })
        var reassembly = NATReassembly()
        var whole: IPv4Packet?
        for fragment in fragments {
            if case .complete(let packet) = reassembly.add(fragment, now: 0, limits: NATLimits(), timeout: 1) {
                whole = packet
            }
        }
        let datagram = try #require(whole).payload
        #expect(datagram.count == 4008 && datagram[8...].allSatisfy { $0 == 0x5A })
    }
}
