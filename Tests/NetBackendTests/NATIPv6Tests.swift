import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("IPv6 addresses")
struct IPv6AddressTests {
    @Test(
        "text forms parse and print in the RFC 5952 form",
        arguments: [
            ("fd17:625c:f037:2::15", "fd17:625c:f037:2::15"), ("::1", "::1"), ("::", "::"),
            ("FE80:0:0:0:0200:00ff:fe00:0001", "fe80::200:ff:fe00:1"), ("[::1]", "::1"),
            ("::ffff:10.0.2.15", "::ffff:a00:20f"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("2001:db8::", "2001:db8::"),
        ])
    func roundTrip(text: String, printed: String) throws {
        let address = try #require(IPv6Address(text))
        #expect(address.description == printed)
        #expect(IPv6Address(printed) == address)
        #expect(IPv6Address(in: address.bytes, at: 0) == address)
    }

    @Test(
        "malformed text is refused",
        arguments: [
            "", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "::1%eth0",
            "1:2:3:4:5:6:7::8",
            "::1.2.3", "1.2.3.4", "[::1", ":1::", "1::2:",
        ])
    func malformed(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test("link-local from a MAC (EUI-64), solicited-node groups, prefixes")
    func derived() throws {
        let mac = MACAddress("52:55:0a:00:02:02")!
        #expect(IPv6Address.linkLocal(for: mac).description == "fe80::5055:aff:fe00:202")
        #expect(IPv6Address("fd17:625c:f037:2::2")!.solicitedNode.description == "ff02::1:ff00:2")
        #expect(IPv6Address.allNodes.multicastMAC == MACAddress("33:33:00:00:00:01")!)
        let prefix = try #require(IPv6Network("fd17:625c:f037:2::/64"))
        #expect(prefix.contains(natGuestIP6) && !prefix.contains(IPv6Address("fd17:625c:f037:3::1")!))
        #expect(IPv6Network("fd00::1/64")?.description == "fd00::/64")
        #expect(IPv6Network("fd00::/129") == nil && IPv6Network("fd00::/") == nil)
        #expect(NATConfiguration(slot: 8).prefix6.description == "fd17:625c:f037:a::/64")
        #expect(NATConfiguration(slot: 0).gateway6 == natGateway6 && NATConfiguration().dnsAddress6 == natDNS6)
    }
}

@Suite("NAT IPv6: NDP, router advertisements, echo")
struct NATNDPTests {
    @Test("a neighbor solicitation for the gateway, the DNS proxy or the router's link-local address is answered")
    func answersSolicitations() throws {
        let bench = try NATBench()
        let linkLocal = bench.nat.configuration.gatewayLinkLocal
        for target in [natGateway6, natDNS6, linkLocal] {
            bench.sendIP6(guestICMPv6(to: target.solicitedNode, solicitation(for: target)))
            let answer = try #require(bench.receiveICMPv6(type: 136).first)
            #expect(answer.mac == natGuestMAC)
            #expect(answer.packet.source == target && answer.packet.destination == natGuestIP6)
            #expect(answer.packet.hopLimit == 255)
            let message = answer.packet.payload
            #expect(message[4] == 0xE0)  // router, solicited, override
            #expect(IPv6Address(in: message, at: 8) == target)
            #expect(message[24] == 2 && message[25] == 1 && MACAddress(bytes: message[26..<32]) == bench.gatewayMAC)
        }
        #expect(bench.counter("ndp_advertisements") == 3)
        // Unicast solicitation (reachability confirmation) from the link-local address.
        bench.sendIP6(
            guestICMPv6(to: natGateway6, solicitation(for: natGateway6), from: natGuestLinkLocal))
        #expect(bench.receiveICMPv6(type: 136).first?.packet.destination == natGuestLinkLocal)
    }

    @Test("solicitations for other addresses, the guest's own DAD probes and malformed ones get no answer")
    func noAnswer() throws {
        let bench = try NATBench()
        let other = IPv6Address("fd17:625c:f037:2::99")!
        bench.sendIP6(guestICMPv6(to: other.solicitedNode, solicitation(for: other)))
        // Duplicate address detection for the guest's tentative address: from ::, no link-layer option.
        bench.sendIP6(
            guestICMPv6(
                to: natGuestIP6.solicitedNode, solicitation(for: natGuestIP6, sourceLinkLayer: false),
                from: .any))
        // Hop limit other than 255: forged from off-link.
        bench.sendIP6(
            guestICMPv6(to: natGateway6.solicitedNode, solicitation(for: natGateway6), hopLimit: 64))
        // An option of length 0 (RFC 4861: drop); it must not loop.
        var zero = solicitation(for: natGateway6, sourceLinkLayer: false)
        zero += [1, 0, 0, 0, 0, 0, 0, 0]
        bench.sendIP6(guestICMPv6(to: natGateway6.solicitedNode, zero))
        // A DAD probe that carries a source link-layer option is malformed.
        bench.sendIP6(
            guestICMPv6(to: natGateway6.solicitedNode, solicitation(for: natGateway6), from: .any))
        #expect(bench.receivePackets6(timeout: 0.3).isEmpty)
        #expect(bench.counter("drop_ndp_malformed") == 3)
        #expect(bench.counter("ndp_advertisements") == 0 && bench.counter("ndp_defended") == 0)
        // The guest's own solicited-node group is not one of the router's.
        #expect(bench.counter("drop_not_for_us") == 2)
    }

    @Test("a DAD probe for the gateway's address is defended with an advertisement to all nodes")
    func defend() throws {
        let bench = try NATBench()
        bench.sendIP6(
            guestICMPv6(
                to: natGateway6.solicitedNode, solicitation(for: natGateway6, sourceLinkLayer: false),
                from: .any))
        let answer = try #require(bench.receiveICMPv6(type: 136).first)
        #expect(answer.packet.destination == .allNodes && answer.mac == MACAddress("33:33:00:00:00:01")!)
        #expect(answer.packet.payload[4] == 0xA0)  // router, override, not solicited
        #expect(bench.counter("ndp_defended") == 1)
    }

    @Test("a router solicitation gets an advertisement: SLAAC prefix, MTU, link-layer address, RDNSS, M=0 O=1")
    func answersRouterSolicitation() throws {
        var configuration = loopbackNATConfiguration()
        configuration.mtu = 4000
        configuration.domainName = "vnic.test"
        let bench = try NATBench(configuration)
        var solicitation: [UInt8] = [133, 0, 0, 0, 0, 0, 0, 0]
        solicitation += [1, 1] + natGuestMAC.bytes
        bench.sendIP6(guestICMPv6(to: .allRouters, solicitation, from: natGuestLinkLocal))
        let answer = try #require(bench.receiveICMPv6(type: 134).first)
        let packet = answer.packet
        #expect(packet.source == configuration.gatewayLinkLocal && packet.destination == natGuestLinkLocal)
        #expect(packet.hopLimit == 255 && answer.mac == natGuestMAC)
        let message = packet.payload
        #expect(message[4] == 64 && message[5] == 0x40)  // hop limit, O set, M clear
        #expect(message.bigEndian16(at: 6) >= 1800)
        let options = try #require(bench.nat.runtime.withEngine { $0.ndpOptions(message, from: 16) })
        let byType = Dictionary(options.map { ($0.type, $0.bytes) }, uniquingKeysWith: { first, _ in first })
        #expect(byType[1].map { MACAddress(bytes: $0[2..<8]) } == bench.gatewayMAC)
        #expect(byType[5]?.bigEndian32(at: 4) == 4000)
        let prefix = try #require(byType[3])
        #expect(prefix[2] == 64 && prefix[3] == 0xC0 && prefix.bigEndian32(at: 4) > 0 && prefix.bigEndian32(at: 8) > 0)
        #expect(IPv6Address(in: prefix, at: 16) == IPv6Address("fd17:625c:f037:2::"))
        let rdnss = try #require(byType[25])
        #expect(rdnss[1] == 3 && rdnss.bigEndian32(at: 4) > 0 && IPv6Address(in: rdnss, at: 8) == natDNS6)
        let dnssl = try #require(byType[31])
        #expect(Array(dnssl[8..<19]) == [4] + Array("vnic".utf8) + [4] + Array("test".utf8) + [0])
        // From :: the answer goes to all nodes.
        bench.sendIP6(guestICMPv6(to: .allRouters, [133, 0, 0, 0, 0, 0, 0, 0], from: .any))
        #expect(bench.receiveICMPv6(type: 134).first?.packet.destination == .allNodes)
    }

    @Test("unsolicited advertisements start with the guest's first IPv6 packet: three 4 s apart, then the interval")
    func periodicAdvertisements() throws {
        let clock = Shared<UInt64>(1_000_000_000)
        var configuration = loopbackNATConfiguration()
        configuration.timeouts.routerAdvertisement = 100
        let nat = try NATAttachment(configuration: configuration, clock: { clock.value })
        defer { nat.close() }
        let port = FramePort(queueCapacity: 256)
        port.attach(nat)
        func advertisements() -> Int {
            port.drain().filter { $0.bigEndian16(at: 12) == EtherType.ipv6 && $0.byte(at: 14 + 40) == 134 }.count
        }
        clock.withLock { $0 += 10_000_000_000 }
        nat.runtime.runTimers()
        #expect(advertisements() == 0)  // no IPv6 guest yet: nothing
        let packet = guestICMPv6(to: natGateway6, echoRequest6(identifier: 1, sequence: 1))
        port.send(ethernetFrame(to: configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv6, payload: packet))
        _ = port.drain()
        var sent = 0
        for _ in 0..<3 {
            clock.withLock { $0 += 4_000_000_000 }
            nat.runtime.runTimers()
            sent += advertisements()
        }
        #expect(sent == 3)
        clock.withLock { $0 += 50_000_000_000 }
        nat.runtime.runTimers()
        #expect(advertisements() == 0)
        clock.withLock { $0 += 51_000_000_000 }
        nat.runtime.runTimers()
        #expect(advertisements() == 1)
    }

    @Test("echo requests to the gateway, the DNS proxy and the router's link-local address are answered locally")
    func echoLocal() throws {
        let bench = try NATBench()
        for target in [natGateway6, natDNS6, bench.nat.configuration.gatewayLinkLocal] {
            bench.sendIP6(guestICMPv6(to: target, echoRequest6(identifier: 7, sequence: 3), hopLimit: 64))
            let reply = try #require(bench.receiveICMPv6(type: 129).first)
            #expect(reply.packet.source == target && reply.packet.destination == natGuestIP6)
            #expect(reply.packet.payload.bigEndian16(at: 4) == 7 && reply.packet.payload.bigEndian16(at: 6) == 3)
            #expect(Array(reply.packet.payload[8...]) == Array("vnic ping6".utf8))
        }
        #expect(bench.counter("icmp_echo_local") == 3)
        #expect(bench.nat.guestAddress6 == natGuestIP6)
    }

    @Test("a bad ICMPv6 checksum, MLD reports and unknown types are dropped and counted")
    func icmpDrops() throws {
        let bench = try NATBench()
        var bad = guestICMPv6(to: natGateway6, echoRequest6(identifier: 1, sequence: 1))
        bad[40 + 9] ^= 0xFF
        bench.sendIP6(bad)
        // An MLDv2 report goes to ff02::16, not a group of the router's.
        bench.sendIP6(guestICMPv6(to: IPv6Address("ff02::16")!, [143, 0, 0, 0, 0, 0, 0, 0], hopLimit: 1))
        bench.sendIP6(guestICMPv6(to: natGateway6, [200, 0, 0, 0, 0, 0, 0, 0]))
        #expect(bench.receivePackets6(timeout: 0.3).isEmpty)
        #expect(bench.counter("drop_icmpv6_checksum") == 1)
        #expect(bench.counter("drop_not_for_us") == 1)
        #expect(bench.counter("drop_icmpv6_type") == 1)
    }
}

@Suite("NAT IPv6: TCP, UDP, policy, errors")
struct NATIPv6TransportTests {
    @Test("TCP to [::2]:port reaches a server on host [::1]; MSS is MTU-60; data both ways; half-close; teardown")
    func tcp() throws {
        guard let listener = LoopbackSocket6(tcp: true) else {
            print("SKIP IPv6 TCP test: no IPv6 loopback")
            return
        }
        let bench = try NATBench()
        let remote = IPEndpoint(.v6(natGateway6), listener.port)
        var sequence: UInt32 = 5000
        bench.sendIP6(
            guestTCP6(from: 40_600, to: remote, sequence: sequence, flags: .syn, options: [2, 4, 0x05, 0xA0]))
        let synAckPacket = try #require(
            bench.receivePackets6 { $0.nextHeader == 6 && TCPFlags(rawValue: $0.payload.byte(at: 13)).contains(.syn) }
                .first)
        #expect(
            transportChecksum(
                source: synAckPacket.packet.source, destination: synAckPacket.packet.destination, proto: 6,
                segment: synAckPacket.packet.payload) == 0)
        let synAck = try #require(TCPSegment(synAckPacket.packet.payload))
        #expect(synAck.mss == 1440 && synAck.acknowledgment == 5001)
        #expect(synAckPacket.packet.source == natGateway6 && synAckPacket.packet.destination == natGuestIP6)
        sequence += 1
        var acknowledgment = synAck.sequence &+ 1
        bench.sendIP6(
            guestTCP6(from: 40_600, to: remote, sequence: sequence, acknowledgment: acknowledgment, flags: .ack))
        let server = listener.accept()
        try #require(server >= 0)
        defer { close(server) }
        let request = Array("hello over IPv6".utf8)
        bench.sendIP6(
            guestTCP6(
                from: 40_600, to: remote, sequence: sequence, acknowledgment: acknowledgment,
                flags: [.ack, .psh], payload: request))
        sequence &+= UInt32(request.count)
        #expect(receiveBytes(server, count: request.count) == request)
        let answer = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        _ = answer.withUnsafeBytes { Glibc.send(server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Glibc.shutdown(server, Int32(SHUT_WR))
        var received: [UInt8] = []
        var sawFin = false
        let deadline = Date().addingTimeInterval(3)
        while !sawFin, Date() < deadline {
            for (packet, _) in bench.receivePackets6(timeout: 0.05, where: { $0.nextHeader == 6 }) {
                guard let segment = TCPSegment(packet.payload) else { continue }
                #expect(packet.header.count + packet.payload.count <= 1500)
                if segment.sequence == acknowledgment, !segment.payload.isEmpty {
                    received += segment.payload
                    acknowledgment &+= UInt32(segment.payload.count)
                }
                if segment.has(.fin), segment.sequence == acknowledgment {
                    sawFin = true
                    acknowledgment &+= 1
                }
            }
            bench.sendIP6(
                guestTCP6(
                    from: 40_600, to: remote, sequence: sequence, acknowledgment: acknowledgment, flags: .ack))
        }
        #expect(received == answer && sawFin)
        bench.sendIP6(
            guestTCP6(
                from: 40_600, to: remote, sequence: sequence, acknowledgment: acknowledgment,
                flags: [.fin, .ack]))
        #expect(receiveBytes(server, count: 1, timeout: 1).isEmpty)
        for _ in 0..<200 where bench.nat.flowCounts.tcp != 0 { usleep(5000) }
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test("a SYN to a closed port on host [::1] is answered with a reset")
    func refused() throws {
        guard let listener = LoopbackSocket6(tcp: true) else {
            print("SKIP IPv6 TCP test: no IPv6 loopback")
            return
        }
        let closedPort = listener.port
        close(listener.fd)
        let bench = try NATBench()
        bench.sendIP6(
            guestTCP6(from: 40_601, to: IPEndpoint(.v6(natGateway6), closedPort), sequence: 9, flags: .syn))
        let reset = try #require(bench.receivePackets6 { $0.nextHeader == 6 }.first)
        let segment = try #require(TCPSegment(reset.packet.payload))
        #expect(segment.has(.rst) && segment.acknowledgment == 10)
        #expect(bench.counter("tcp_refused") == 1)
    }

    @Test("UDP to [::2]:port reaches host [::1] and the answer comes back; a closed port is ICMPv6 port unreachable")
    func udp() throws {
        guard let server = LoopbackSocket6(tcp: false) else {
            print("SKIP IPv6 UDP test: no IPv6 loopback")
            return
        }
        let bench = try NATBench()
        bench.sendIP6(guestUDP6(from: 5353, to: IPEndpoint(.v6(natGateway6), server.port), payload: [1, 2, 3]))
        #expect(server.echoOnce() == [1, 2, 3])
        let reply = try #require(bench.receivePackets6 { $0.nextHeader == 17 }.first?.packet)
        #expect(reply.source == natGateway6 && reply.destination == natGuestIP6)
        #expect(
            transportChecksum(source: reply.source, destination: reply.destination, proto: 17, segment: reply.payload)
                == 0)
        #expect(
            reply.payload.bigEndian16(at: 0) == server.port && reply.payload.bigEndian16(at: 2) == 5353
                && Array(reply.payload[8...]) == [1, 2, 3])

        // A zero UDP checksum is not allowed over IPv6.
        var zero = guestUDP6(from: 5354, to: IPEndpoint(.v6(natGateway6), server.port), payload: [9])
        zero.storeBigEndian16(0, at: 40 + 6)
        bench.sendIP6(zero)
        #expect(bench.counter("drop_udp_checksum") == 1)

        let closedPort = server.port
        let bench2 = try NATBench()
        withExtendedLifetime(server) {}
        close(server.fd)
        bench2.sendIP6(guestUDP6(from: 5355, to: IPEndpoint(.v6(natGateway6), closedPort), payload: [4]))
        let error = try #require(bench2.receiveICMPv6(type: 1).first?.packet)
        #expect(error.payload[1] == 4)  // port unreachable
        #expect(error.source == natGateway6 && error.destination == natGuestIP6)
        #expect(IPv6Address(in: error.payload, at: 8 + 8) == natGuestIP6)  // the offending header follows
    }

    @Test("policy: restrict denies, host ::1 and IPv4-mapped loopback are never reached, ::2 needs localhostReachable")
    func policy() throws {
        var configuration = loopbackNATConfiguration()
        configuration.localhostReachable = false
        let bench = try NATBench(configuration)
        let outside = IPv6Address("2001:db8::1")!
        bench.sendIP6(guestICMPv6(to: outside, echoRequest6(identifier: 2, sequence: 1), hopLimit: 64))
        let prohibited = try #require(bench.receiveICMPv6(type: 1).first?.packet)
        #expect(prohibited.payload[1] == 1)  // administratively prohibited
        #expect(bench.counter("drop_policy_denied") == 1)
        for target in [IPv6Address.loopback, IPv6Address("::ffff:127.0.0.1")!, natGateway6] {
            bench.sendIP6(guestTCP6(from: 40_700, to: IPEndpoint(.v6(target), 22), sequence: 1, flags: .syn))
        }
        let resets = bench.receivePackets6(atLeast: 2, where: { $0.nextHeader == 6 })
        #expect(resets.count == 2)  // ::1 and ::2 get resets; the IPv4-mapped address is silently not routed
        #expect(bench.counter("drop_policy_loopback") == 2)
        #expect(bench.counter("drop_ip_destination") == 1)
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test(
        "hop limit 1 is time exceeded; a packet larger than the MTU is packet too big; unknown next header is a parameter problem"
    )
    func errors() throws {
        let bench = try NATBench()
        let outside = IPv6Address("2001:db8::1")!
        bench.sendIP6(guestUDP6(from: 1, to: IPEndpoint(.v6(outside), 9), payload: [1]).withHopLimit(1))
        let exceeded = try #require(bench.receiveICMPv6(type: 3).first?.packet)
        #expect(exceeded.source == natGateway6 && exceeded.payload[1] == 0)
        bench.sendIP6(guestUDP6(from: 1, to: IPEndpoint(.v6(outside), 9), payload: [UInt8](repeating: 0, count: 1500)))
        let tooBig = try #require(bench.receiveICMPv6(type: 2).first?.packet)
        #expect(tooBig.payload.bigEndian32(at: 4) == 1500)
        #expect(tooBig.header.count + tooBig.payload.count <= 1280)
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 200, payload: [0, 0, 0, 0, 0, 0, 0, 0]))
        let problem = try #require(bench.receiveICMPv6(type: 4).first?.packet)
        #expect(problem.payload[1] == 1 && problem.payload.bigEndian32(at: 4) == 6)
        // Never an error about an error.
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 200, payload: [], from: .any))
        #expect(bench.receivePackets6(timeout: 0.2).isEmpty)
    }

    @Test("the DNS proxy at ::3 forwards to the configured resolver")
    func dnsProxy() throws {
        let resolver = LoopbackUDPServer(reply: { Array($0.reversed()) })
        defer { resolver.stop() }
        let bench = try NATBench(loopbackNATConfiguration(dns: [IPv4Endpoint(.loopback, resolver.port)]))
        bench.sendIP6(guestUDP6(from: 33_000, to: IPEndpoint(.v6(natDNS6), 53), payload: [1, 2, 3, 4]))
        let reply = try #require(bench.receivePackets6 { $0.nextHeader == 17 }.first?.packet)
        #expect(
            reply.source == natDNS6 && reply.payload.bigEndian16(at: 0) == 53
                && Array(reply.payload[8...]) == [4, 3, 2, 1])
        bench.sendIP6(guestUDP6(from: 33_001, to: IPEndpoint(.v6(natDNS6), 54), payload: [1]))
        #expect(bench.receiveICMPv6(type: 1).first?.packet.payload[1] == 4)
    }
}
