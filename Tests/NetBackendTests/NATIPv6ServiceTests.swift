import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

extension Array where Element == UInt8 {
    /// An IPv6 packet with its hop limit changed.
    func withHopLimit(_ limit: UInt8) -> [UInt8] {
        var copy = self
        if copy.count > 7 { copy[7] = limit }
        return copy
    }
}

@Suite("NAT IPv6: DHCPv6, port forwards, hostile frames")
struct NATIPv6ServiceTests {
    /// A DHCPv6 message from the guest's link-local address to all servers.
    func dhcpv6(_ type: UInt8, options: [(UInt16, [UInt8])]) -> [UInt8] {
        var message: [UInt8] = [type, 0xAB, 0xCD, 0xEF]
        for (code, data) in options {
            message.appendBigEndian16(code)
            message.appendBigEndian16(UInt16(data.count))
            message += data
        }
        let datagram = TransportSegment.udp(
            from: IPEndpoint(.v6(natGuestLinkLocal), 546), to: IPEndpoint(.v6(.allDHCPServers), 547), payload: message)
        return guestPacket6(
            to: .allDHCPServers, nextHeader: 17, payload: datagram, from: natGuestLinkLocal, hopLimit: 1)
    }

    /// The options of a DHCPv6 message from the NAT.
    func options(_ message: [UInt8]) -> [UInt16: [UInt8]] {
        var result: [UInt16: [UInt8]] = [:]
        var index = 4
        while index + 4 <= message.count {
            let length = Int(message.bigEndian16(at: index + 2))
            result[message.bigEndian16(at: index)] = message.bytes(from: index + 4, count: length)
            index += 4 + length
        }
        return result
    }

    @Test("Information-Request gets the DNS proxy and domain; Solicit gets NoAddrsAvail; other servers are ignored")
    func dhcpv6() throws {
        var configuration = loopbackNATConfiguration()
        configuration.domainName = "vnic.test"
        let bench = try NATBench(configuration)
        let clientID: [UInt8] = [0, 3, 0, 1] + natGuestMAC.bytes
        bench.sendIP6(dhcpv6(11, options: [(1, clientID), (6, [0, 23, 0, 24]), (8, [0, 0])]))
        let reply = try #require(bench.receivePackets6 { $0.nextHeader == 17 }.first?.packet)
        #expect(reply.source == configuration.gatewayLinkLocal && reply.destination == natGuestLinkLocal)
        #expect(reply.payload.bigEndian16(at: 0) == 547 && reply.payload.bigEndian16(at: 2) == 546)
        let message = Array(reply.payload[8...])
        #expect(message[0] == 7 && Array(message[1..<4]) == [0xAB, 0xCD, 0xEF])
        let replyOptions = options(message)
        #expect(replyOptions[1] == clientID)
        #expect(replyOptions[2] == [0, 3, 0, 1] + configuration.gatewayMAC.bytes)
        #expect(replyOptions[23] == natDNS6.bytes)
        #expect(replyOptions[24] == [4] + Array("vnic".utf8) + [4] + Array("test".utf8) + [0])

        bench.sendIP6(dhcpv6(1, options: [(1, clientID), (3, [0, 0, 0, 1] + [UInt8](repeating: 0, count: 8))]))
        let advertise = try #require(bench.receivePackets6 { $0.nextHeader == 17 }.first?.packet)
        let advertised = Array(advertise.payload[8...])
        #expect(advertised[0] == 2)
        let advertisedOptions = options(advertised)
        #expect(advertisedOptions[13]?.bigEndian16(at: 0) == 2 && advertisedOptions[3] == nil)
        #expect(advertisedOptions[1] == clientID)

        bench.sendIP6(dhcpv6(11, options: [(1, clientID), (2, [0, 3, 0, 1, 1, 2, 3, 4, 5, 6])]))
        bench.sendIP6(dhcpv6(11, options: [(1, clientID), (23, [])]) + [0, 0])  // trailing bytes beyond the UDP length
        var truncated = dhcpv6(11, options: [(1, clientID)])
        // an option length past the end; the UDP checksum now fails
        truncated.storeBigEndian16(0x00FF, at: 40 + 8 + 4 + 2)
        bench.sendIP6(truncated)
        #expect(bench.counter("dhcpv6_ignored") == 1)
        #expect(bench.counter("dhcpv6_replies") == 2 && bench.counter("dhcpv6_advertises") == 1)
        #expect(bench.counter("drop_udp_checksum") == 1)
    }

    @Test("an IPv6 TCP forward on [::1] reaches the guest's IPv6 address from ::2")
    func tcpForward6() throws {
        guard let probe = LoopbackSocket6(tcp: true) else {
            print("SKIP IPv6 forward test: no IPv6 loopback")
            return
        }
        let hostPort = probe.port
        close(probe.fd)
        var configuration = loopbackNATConfiguration()
        configuration.portForwards = [try PortForwardRule(parsing: "web6,tcp,[::1],\(hostPort),,80")]
        let bench = try NATBench(configuration)
        bench.sendIP6(guestICMPv6(to: natGateway6, echoRequest6(identifier: 1, sequence: 1)))
        _ = bench.port.drain()
        let client = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = Shared<Int32>(-1)
        let connector = Thread {
            connected.withLock { $0 = HostSocket.connect(client, to: IPEndpoint(.v6(.loopback), hostPort)) }
        }
        connector.start()
        let synPacket = try #require(bench.receivePackets6 { $0.nextHeader == 6 }.first?.packet)
        #expect(synPacket.source == natGateway6 && synPacket.destination == natGuestIP6)
        let syn = try #require(TCPSegment(synPacket.payload))
        #expect(syn.has(.syn) && syn.destinationPort == 80 && syn.mss == 1440)
        let remote = IPEndpoint(.v6(natGateway6), syn.sourcePort)
        bench.sendIP6(
            guestTCP6(
                from: 80, to: remote, sequence: 700, acknowledgment: syn.sequence &+ 1,
                flags: [.syn, .ack], options: [2, 4, 0x05, 0xA0]))
        let ack = try #require(
            bench.receivePackets6 { $0.nextHeader == 6 }.compactMap { TCPSegment($0.packet.payload) }.first)
        #expect(ack.has(.ack) && ack.acknowledgment == 701)
        for _ in 0..<200 where connected.value != 0 { usleep(5000) }
        #expect(connected.value == 0)
        bench.sendIP6(
            guestTCP6(
                from: 80, to: remote, sequence: 701, acknowledgment: syn.sequence &+ 1,
                flags: [.ack, .psh], payload: Array("HTTP/1.0 200\r\n".utf8)))
        #expect(receiveBytes(client, count: 14) == Array("HTTP/1.0 200\r\n".utf8))
        #expect(bench.counter("forward_accepted") == 1)
    }

    @Test("hostile IPv6 frames are dropped and counted, never trap")
    func hostile() throws {
        let bench = try NATBench()
        let good = guestICMPv6(to: natGateway6, echoRequest6(identifier: 1, sequence: 1))
        bench.sendIP6(Array(good.prefix(39)))  // short header
        var lying = good
        lying.storeBigEndian16(2000, at: 4)  // payload length past the frame
        bench.sendIP6(lying)
        var version = good
        version[0] = 0x45
        bench.sendIP6(version)
        var jumbo = good
        jumbo.storeBigEndian16(0, at: 4)
        jumbo[6] = 0
        bench.sendIP6(jumbo)
        #expect(bench.counter("drop_ipv6_malformed") == 4)

        // Nine destination-options headers: more than the walk allows.
        var chain: [UInt8] = []
        for _ in 0..<9 { chain += [60, 0, 1, 4, 0, 0, 0, 0] }
        chain[chain.count - 8] = 58
        var chained = guestPacket6(
            to: natGateway6, nextHeader: 60, payload: chain + echoRequest6(identifier: 1, sequence: 1))
        bench.sendIP6(chained)
        // An extension header that runs past the payload.
        chained = guestPacket6(to: natGateway6, nextHeader: 60, payload: [58, 4, 0, 0, 0, 0, 0, 0])
        bench.sendIP6(chained)
        // A routing header with segments left.
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 43, payload: [58, 0, 0, 1, 0, 0, 0, 0]))
        // A hop-by-hop header after another extension header.
        bench.sendIP6(
            guestPacket6(to: natGateway6, nextHeader: 60, payload: [0, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0]))
        // A fragment.
        bench.sendIP6(
            guestPacket6(to: natGateway6, nextHeader: 44, payload: [58, 0, 0, 1, 0, 0, 0, 1] + [128, 0, 0, 0]))
        #expect(bench.counter("drop_ipv6_extension_header") == 3)
        #expect(bench.counter("drop_ipv6_malformed") == 5)
        #expect(bench.counter("drop_ipv6_fragment") == 1)

        // One destination-options header is walked: the echo inside is answered.
        let echo = guestICMPv6(to: natGateway6, echoRequest6(identifier: 4, sequence: 4))
        var withOptions = Array(echo[0..<40]) + [58, 0, 1, 4, 0, 0, 0, 0] + Array(echo[40...])
        withOptions[6] = 60
        withOptions.storeBigEndian16(UInt16(withOptions.count - 40), at: 4)
        _ = bench.port.drain()
        bench.sendIP6(withOptions)
        #expect(bench.receiveICMPv6(type: 129).first?.packet.payload.bigEndian16(at: 4) == 4)

        // Truncated upper layers.
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 58, payload: [128, 0, 0]))
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 17, payload: [0, 1, 0, 2, 0]))
        bench.sendIP6(guestPacket6(to: natGateway6, nextHeader: 6, payload: [0, 1, 0, 2, 0, 0, 0, 0]))
        #expect(bench.counter("drop_icmpv6_malformed") == 1)
        #expect(bench.counter("drop_udp_malformed") == 1)
        #expect(bench.counter("drop_tcp_checksum") + bench.counter("drop_tcp_malformed") == 1)

        // Spoofed sources: another prefix, a multicast source, the gateway's own address.
        for source in [IPv6Address("2001:db8::5")!, IPv6Address("ff02::1")!, natGateway6] {
            bench.sendIP6(guestICMPv6(to: natGateway6, echoRequest6(identifier: 9, sequence: 9), from: source))
        }
        #expect(bench.counter("drop_ipv6_source") == 3)
        // A unicast packet in a multicast frame is not for the router.
        bench.port.send(
            ethernetFrame(to: MACAddress("33:33:00:00:00:01")!, from: natGuestMAC, type: EtherType.ipv6, payload: echo))
        #expect(bench.receivePackets6(timeout: 0.2).filter { $0.packet.payload.first == 129 }.isEmpty)

        // IPv6 off: counted, nothing else.
        var configuration = loopbackNATConfiguration()
        configuration.ipv6 = false
        let off = try NATBench(configuration)
        off.sendIP6(echo)
        #expect(off.counter("drop_ipv6_disabled") == 1)
        #expect(off.receivePackets6(timeout: 0.2).isEmpty)
    }

    @Test("random IPv6 frames never trap", arguments: [1, 2, 3])
    func random(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let bench = try NATBench()
        let templates: [[UInt8]] = [
            guestICMPv6(to: natGateway6.solicitedNode, solicitation(for: natGateway6)),
            guestICMPv6(
                to: .allRouters, [133, 0, 0, 0, 0, 0, 0, 0, 1, 1] + natGuestMAC.bytes, from: natGuestLinkLocal),
            guestUDP6(from: 546, to: IPEndpoint(.v6(.allDHCPServers), 547), payload: [11, 1, 2, 3, 0, 1, 0, 2, 9, 9]),
            guestTCP6(from: 1, to: IPEndpoint(.v6(natGateway6), 9), sequence: 1, flags: .syn),
        ]
        for index in 0..<400 {
            var frame = templates[index % templates.count]
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let position = Int.random(in: 0..<frame.count, using: &generator)
                frame[position] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) {
                frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &generator)))
            }
            bench.sendIP6(frame, metadata: .none)
            _ = bench.port.drain()
        }
        #expect(bench.counter("frames_in") == 400)
    }
}
