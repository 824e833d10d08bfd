import NICCore
import Testing

@testable import NetBackend

@Suite("NAT addressing, ARP and DHCP")
struct NATAddressingTests {
    @Test("slot n gets 10.0.(n+2).0/24 with gateway .2, DNS .3, DHCP from .15")
    func slotAddressing() {
        let first = NATConfiguration(slot: 0)
        #expect(first.network.description == "10.0.2.0/24")
        #expect(first.gateway == IPv4Address(10, 0, 2, 2))
        #expect(first.dnsAddress == IPv4Address(10, 0, 2, 3))
        #expect(first.dhcpStart == IPv4Address(10, 0, 2, 15))
        #expect(first.gatewayMAC.description == "52:55:0a:00:02:02")
        let third = NATConfiguration(slot: 2)
        #expect(third.network.description == "10.0.4.0/24")
        #expect(third.gateway == IPv4Address(10, 0, 4, 2))
    }

    @Test(
        "CIDRs parse in VirtualBox's short form",
        arguments: [
            ("192.168/16", "192.168.0.0/16"), ("10/8", "10.0.0.0/8"), ("172.16.5.0/24", "172.16.5.0/24"),
            ("10.0.2.77/24", "10.0.2.0/24"), ("1.2.3.4", "1.2.3.4/32"),
        ])
    func cidrParsing(text: String, expected: String) {
        #expect(IPv4Network(text)?.description == expected)
    }

    @Test(
        "bad CIDRs and addresses are rejected",
        arguments: [
            "", "10.0.2.0/33", "1.2.3.4.5", "10.0.2/", "a.b.c.d/8",
            "256.0.0.0/8", "1..2.3/24", "10.0.2.0/24/1",
        ])
    func badCIDR(text: String) {
        #expect(IPv4Network(text) == nil)
    }

    @Test("a custom CIDR moves every service address")
    func customNetwork() throws {
        let configuration = NATConfiguration(network: try #require(IPv4Network("192.168/16")))
        #expect(configuration.gateway == IPv4Address(192, 168, 0, 2))
        #expect(configuration.dnsAddress == IPv4Address(192, 168, 0, 3))
        #expect(configuration.dhcpStart == IPv4Address(192, 168, 0, 15))
    }

    @Test("resolv.conf nameservers of both families in order, loopback ones included; zoned ones skipped")
    func resolvConf() throws {
        let servers = NATConfiguration.parseNameservers(
            "# comment\nnameserver 127.0.0.53\noptions edns0\nnameserver\t10.1.2.3\nnameserver ::1\nsearch x\n"
                + "nameserver fe80::1%eth0\nnameserver fe80::1\nnameserver ::ffff:1.2.3.4\nnameserver 2001:db8::53\n")
        let expected: [IPEndpoint] = [
            IPEndpoint(.v4(IPv4Address(127, 0, 0, 53)), 53), IPEndpoint(.v4(IPv4Address(10, 1, 2, 3)), 53),
            IPEndpoint(.v6(.loopback), 53), IPEndpoint(.v6(try #require(IPv6Address("2001:db8::53"))), 53),
        ]
        #expect(servers == expected)
    }

    @Test("invalid configurations name the bad field")
    func validation() {
        var configuration = NATConfiguration()
        configuration.mtu = 70_000
        #expect(throws: NATError.configuration("mtu 70000 is outside 576...65520")) {
            try configuration.validate()
        }
        configuration = NATConfiguration(network: IPv4Network("10.0.2.0/30")!)
        #expect(throws: NATError.self) { try configuration.validate() }
    }

    @Test("ARP for the gateway and the DNS proxy is answered; other addresses are not")
    func arp() throws {
        let bench = try NATBench()
        for (target, answered) in [(natGateway, true), (natDNS, true), (IPv4Address(10, 0, 2, 99), false)] {
            var request: [UInt8] = []
            request.appendBigEndian16(1)
            request.appendBigEndian16(0x0800)
            request += [6, 4]
            request.appendBigEndian16(1)
            request += natGuestMAC.bytes + natGuestIP.bytes + [0, 0, 0, 0, 0, 0] + target.bytes
            bench.port.send(ethernetFrame(to: .broadcast, from: natGuestMAC, type: 0x0806, payload: request))
            let frames = bench.port.drain()
            guard answered else {
                #expect(frames.isEmpty)
                continue
            }
            let reply = try #require(frames.first)
            #expect(Array(reply[0..<6]) == natGuestMAC.bytes)
            #expect(reply.bigEndian16(at: 12) == 0x0806)
            #expect(reply.bigEndian16(at: 20) == 2)
            #expect(Array(reply[22..<28]) == bench.gatewayMAC.bytes)
            #expect(Array(reply[28..<32]) == target.bytes)
            #expect(Array(reply[38..<42]) == natGuestIP.bytes)
        }
        #expect(bench.counter("arp_replies") == 2)
    }

    @Test("attaching raises carrier")
    func carrier() throws {
        let bench = try NATBench()
        #expect(bench.port.carrier)
    }

    // MARK: DHCP

    static func dhcpMessage(
        type: DHCPMessageType, mac: MACAddress = natGuestMAC, xid: UInt32 = 0x1234_5678, requested: IPv4Address? = nil,
        broadcast: Bool = false, extra: [UInt8] = [], end: Bool = true
    ) -> [UInt8] {
        var message = [UInt8](repeating: 0, count: 236)
        message[0] = 1
        message[1] = 1
        message[2] = 6
        message.storeBigEndian32(xid, at: 4)
        if broadcast { message.storeBigEndian16(0x8000, at: 10) }
        for (index, byte) in mac.bytes.enumerated() { message[28 + index] = byte }
        message.appendBigEndian32(0x6382_5363)
        message += [53, 1, type.rawValue]
        if let requested { message += [50, 4] + requested.bytes }
        message += extra
        if end { message.append(255) }
        return message
    }

    static func sendDHCP(_ bench: NATBench, _ message: [UInt8]) {
        let datagram = udpDatagram(
            from: IPv4Endpoint(.any, 68), to: IPv4Endpoint(.broadcast, 67), payload: message)
        let packet = guestPacket(to: .broadcast, proto: IPProtocolNumber.udp, payload: datagram, from: .any)
        bench.port.send(ethernetFrame(to: .broadcast, from: natGuestMAC, type: EtherType.ipv4, payload: packet))
    }

    /// The DHCP reply among the queued frames, its options parsed.
    static func dhcpReply(_ bench: NATBench) throws -> (packet: IPv4Packet, message: [UInt8], options: DHCPOptions) {
        let frame = try #require(bench.port.drain().first)
        let packet = try IPv4Packet(parsing: frame, at: 14)
        #expect(packet.source == natGateway)
        #expect(packet.payload.bigEndian16(at: 0) == 67 && packet.payload.bigEndian16(at: 2) == 68)
        #expect(
            transportChecksum(
                source: packet.source, destination: packet.destination, proto: 17, segment: packet.payload) == 0)
        let message = Array(packet.payload[8...])
        return (packet, message, try #require(DHCPOptions(message, from: 240)))
    }

    @Test("DISCOVER gets an OFFER of .15 with every configured option; REQUEST gets an ACK")
    func dhcpExchange() throws {
        var configuration = loopbackNATConfiguration()
        configuration.domainName = "vnic.test"
        configuration.leaseTime = 3600
        configuration.mtu = 9000
        configuration.tftpServer = natGateway
        configuration.bootFile = "pxelinux.0"
        let bench = try NATBench(configuration)
        Self.sendDHCP(bench, Self.dhcpMessage(type: .discover))
        let offer = try Self.dhcpReply(bench)
        #expect(offer.options[53] == [DHCPMessageType.offer.rawValue])
        #expect(IPv4Address(rawValue: offer.message.bigEndian32(at: 16)) == natGuestIP)
        #expect(offer.message.bigEndian32(at: 4) == 0x1234_5678)
        #expect(offer.options[1] == [255, 255, 255, 0])
        #expect(offer.options[3] == natGateway.bytes)
        #expect(offer.options[6] == natDNS.bytes)
        #expect(offer.options[15] == Array("vnic.test".utf8))
        #expect(offer.options[51] == [0, 0, 0x0E, 0x10])
        #expect(offer.options[26] == [0x23, 0x28])
        #expect(offer.options[54] == natGateway.bytes)
        #expect(offer.options[66] == Array("10.0.2.2".utf8))
        #expect(offer.options[67] == Array("pxelinux.0".utf8))
        #expect(IPv4Address(rawValue: offer.message.bigEndian32(at: 20)) == natGateway)
        #expect(Array(offer.message[108..<118]) == Array("pxelinux.0".utf8))

        Self.sendDHCP(bench, Self.dhcpMessage(type: .request, requested: natGuestIP))
        let ack = try Self.dhcpReply(bench)
        #expect(ack.options[53] == [DHCPMessageType.ack.rawValue])
        #expect(IPv4Address(rawValue: ack.message.bigEndian32(at: 16)) == natGuestIP)
        #expect(bench.nat.guestAddress == natGuestIP)
        #expect(bench.counter("dhcp_offers") == 1 && bench.counter("dhcp_acks") == 1)
    }

    @Test("a second card MAC gets .16; a REQUEST for someone else's address gets a NAK")
    func dhcpSecondClientAndNak() throws {
        let bench = try NATBench()
        Self.sendDHCP(bench, Self.dhcpMessage(type: .discover))
        _ = try Self.dhcpReply(bench)
        let other = MACAddress("52:54:00:00:00:02")!
        Self.sendDHCP(bench, Self.dhcpMessage(type: .discover, mac: other))
        let offer = try Self.dhcpReply(bench)
        #expect(IPv4Address(rawValue: offer.message.bigEndian32(at: 16)) == IPv4Address(10, 0, 2, 16))
        Self.sendDHCP(bench, Self.dhcpMessage(type: .request, mac: other, requested: natGuestIP))
        let nak = try Self.dhcpReply(bench)
        #expect(nak.options[53] == [DHCPMessageType.nak.rawValue])
        #expect(nak.packet.destination == .broadcast)
        #expect(bench.counter("dhcp_naks") == 1)
    }

    @Test("DHCP with options running past the packet, no message type, or a short header is dropped and counted")
    func dhcpHostile() throws {
        let bench = try NATBench()
        var overrun = Self.dhcpMessage(type: .discover, end: false)
        overrun += [12, 200, 0x41, 0x42]
        Self.sendDHCP(bench, overrun)
        Self.sendDHCP(bench, Array(Self.dhcpMessage(type: .discover).prefix(200)))
        var noType = Self.dhcpMessage(type: .discover)
        noType.removeSubrange(240..<243)
        Self.sendDHCP(bench, noType)
        Self.sendDHCP(bench, Self.dhcpMessage(type: .discover, extra: [61]))  // code without length
        #expect(bench.port.drain().isEmpty)
        #expect(bench.counter("drop_dhcp_malformed") == 4)
    }

    @Test("the pool of 16 leases runs out and says so")
    func dhcpPoolExhausted() throws {
        let bench = try NATBench()
        for index in 0..<17 {
            Self.sendDHCP(
                bench,
                Self.dhcpMessage(
                    type: .discover, mac: MACAddress(rawValue: 0x5254_0000_1000 + UInt64(index))))
        }
        #expect(bench.port.drain().count == 16)
        #expect(bench.counter("drop_dhcp_no_lease") == 1)
    }
}
