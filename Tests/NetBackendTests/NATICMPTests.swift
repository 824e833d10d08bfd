import Glibc
import NICCore
import Testing

@testable import NetBackend

@Suite("NAT ICMP")
struct NATICMPTests {
    @Test("echo to the gateway and the DNS address is answered locally")
    func echoLocal() throws {
        let bench = try NATBench()
        for destination in [natGateway, natDNS] {
            bench.sendIP(guestPacket(to: destination, proto: 1, payload: echoRequest(identifier: 7, sequence: 3)))
            let frame = try #require(bench.port.drain().first)
            #expect(Array(frame[0..<6]) == natGuestMAC.bytes)
            let packet = try IPv4Packet(parsing: frame, at: 14)
            #expect(packet.source == destination && packet.destination == natGuestIP)
            #expect(
                packet.payload[0] == 0 && packet.payload.bigEndian16(at: 4) == 7
                    && packet.payload.bigEndian16(at: 6) == 3)
            #expect(InternetChecksum.of(packet.payload) == 0)
            #expect(Array(packet.payload[8...]) == Array("vnic ping".utf8))
        }
        #expect(bench.counter("icmp_echo_local") == 2)
    }

    @Test("echo with a bad checksum, a truncated header or an unknown type is dropped and counted")
    func echoHostile() throws {
        let bench = try NATBench()
        var bad = echoRequest(identifier: 1, sequence: 1)
        bad[9] ^= 0xFF
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: bad))
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: [8, 0, 0xF7]))
        var timestamp = [UInt8](repeating: 0, count: 20)
        timestamp[0] = 13
        timestamp.storeBigEndian16(InternetChecksum.of(timestamp), at: 2)
        bench.sendIP(guestPacket(to: natGateway, proto: 1, payload: timestamp))
        #expect(bench.port.drain().isEmpty)
        #expect(bench.counter("drop_icmp_checksum") == 1)
        #expect(bench.counter("drop_icmp_malformed") == 1)
        #expect(bench.counter("drop_icmp_type") == 1)
    }

    @Test("echo to a destination restrict mode forbids gets 'administratively prohibited'")
    func echoDenied() throws {
        let bench = try NATBench()
        let request = guestPacket(
            to: IPv4Address(192, 0, 2, 1), proto: 1, payload: echoRequest(identifier: 1, sequence: 1))
        bench.sendIP(request)
        let frame = try #require(bench.port.drain().first)
        let packet = try IPv4Packet(parsing: frame, at: 14)
        #expect(packet.proto == 1 && packet.payload[0] == 3 && packet.payload[1] == 13)
        #expect(Array(packet.payload[8..<28]) == Array(request[0..<20]))
        #expect(bench.counter("drop_policy_denied") == 1)
    }

    @Test("a packet with TTL 1 to the outside gets 'time exceeded'")
    func ttlExceeded() throws {
        let bench = try NATBench()
        bench.sendIP(
            guestPacket(
                to: IPv4Address(192, 0, 2, 1), proto: 1, payload: echoRequest(identifier: 1, sequence: 1), ttl: 1))
        let packet = try IPv4Packet(parsing: try #require(bench.port.drain().first), at: 14)
        #expect(packet.payload[0] == 11 && packet.payload[1] == 0)
        #expect(bench.counter("drop_ttl_exceeded") == 1)
    }

    @Test("an unknown IP protocol gets 'protocol unreachable'")
    func protocolUnreachable() throws {
        let bench = try NATBench()
        bench.sendIP(guestPacket(to: IPv4Address(192, 0, 2, 1), proto: 132, payload: [1, 2, 3, 4]))
        let packet = try IPv4Packet(parsing: try #require(bench.port.drain().first), at: 14)
        #expect(packet.payload[0] == 3 && packet.payload[1] == 2)
    }

    @Test("a DF packet over the MTU gets 'fragmentation needed' with the MTU")
    func fragmentationNeeded() throws {
        var configuration = loopbackNATConfiguration()
        configuration.allowedDestinations = [IPv4Network("127.0.0.1/32")!]
        let bench = try NATBench(configuration)
        let big = guestUDP(from: 5000, to: IPv4Endpoint(.loopback, 9), payload: [UInt8](repeating: 1, count: 1600))
        var packet = big
        packet.storeBigEndian16(packet.bigEndian16(at: 6) | 0x4000, at: 6)
        packet.storeBigEndian16(0, at: 10)
        packet.storeBigEndian16(InternetChecksum.of(Array(packet[0..<20])), at: 10)
        bench.port.send(
            ethernetFrame(to: bench.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4, payload: packet))
        let reply = try IPv4Packet(parsing: try #require(bench.port.drain().first), at: 14)
        #expect(reply.payload[0] == 3 && reply.payload[1] == 4 && reply.payload.bigEndian16(at: 6) == 1500)
    }

    @Test(
        "echo to an explicitly allowed loopback address goes through a ping socket, or is counted when the host refuses them"
    )
    func echoThroughPingSocket() throws {
        // Whether this host lets us open ICMP ping sockets (net.ipv4.ping_group_range); NATPingSocketTests covers
        // the allowed case in a namespace of its own whatever the host says.
        let probe = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), Int32(IPPROTO_ICMP))
        let allowed = probe >= 0
        if allowed { close(probe) }
        var configuration = loopbackNATConfiguration()
        configuration.allowedDestinations = [IPv4Network("127.0.0.1/32")!]
        let bench = try NATBench(configuration)
        bench.sendIP(guestPacket(to: .loopback, proto: 1, payload: echoRequest(identifier: 0x4242, sequence: 9)))
        guard allowed else {
            // Refused: the request is dropped and counted, and nothing reaches the guest.
            #expect(bench.receivePackets(timeout: 0.3) { $0.proto == 1 }.isEmpty)
            #expect(bench.counter("drop_icmp_socket") == 1)
            return
        }
        let replies = bench.receivePackets { $0.proto == 1 }
        let reply = try #require(replies.first)
        #expect(reply.source == .loopback && reply.destination == natGuestIP)
        #expect(
            reply.payload[0] == 0 && reply.payload.bigEndian16(at: 4) == 0x4242 && reply.payload.bigEndian16(at: 6) == 9
        )
        #expect(InternetChecksum.of(reply.payload) == 0)
    }
}
