import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("Host links: QEMU -netdev stream framing", .serialized)
struct HostLinkStreamTests {
    /// A NAT behind a stream link on a fresh unix socket path (or `address`).
    static func link(_ address: StreamAddress? = nil) throws -> (StreamLink, NATAttachment) {
        let nat = try NATAttachment(configuration: loopbackNATConfiguration())
        let link = try StreamLink(listeningOn: address ?? .unix(temporaryPath("stream.sock")), attachment: nat)
        return (link, nat)
    }

    static func counter(_ link: StreamLink, _ name: String) -> UInt64 {
        link.counters.first { $0.name == name }?.value ?? 0
    }

    /// ARP for the gateway answered through `client`.
    static func expectARP(_ client: StreamTestClient, gatewayMAC: MACAddress) throws {
        client.send(frame: arpRequest(for: natGateway))
        let reply = try #require(client.receiveFrame { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp })
        #expect(Array(reply[0..<6]) == natGuestMAC.bytes)
        #expect(reply.bigEndian16(at: 20) == 2)
        #expect(Array(reply[22..<28]) == gatewayMAC.bytes)
        #expect(Array(reply[28..<32]) == natGateway.bytes)
    }

    @Test("ARP and DHCP DISCOVER over a unix socket get the gateway's MAC and an offer of 10.0.2.15")
    func arpAndDHCPOverUnixSocket() throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        let client = try #require(StreamTestClient(link.address))
        try Self.expectARP(client, gatewayMAC: nat.configuration.gatewayMAC)
        client.send(frame: dhcpDiscover())
        let offer = try #require(client.receiveFrame { dhcpMessage(in: $0) != nil }.flatMap { dhcpMessage(in: $0) })
        #expect(Array(offer[16..<20]) == natGuestIP.bytes)
        #expect(DHCPOptions(offer, from: 240)?[53] == [DHCPMessageType.offer.rawValue])
        #expect(link.isConnected)
        #expect(Self.counter(link, "stream_connections") == 1)
        #expect(Self.counter(link, "stream_frames_in") == 2)
        #expect(Self.counter(link, "stream_frames_out") >= 2)
        #expect(nat.counter("dhcp_offers") == 1)
    }

    @Test("a TCP listener on 127.0.0.1 with a kernel-chosen port carries frames")
    func tcpLoopback() throws {
        let (link, nat) = try Self.link(.tcp(IPv4Endpoint(.loopback, 0)))
        defer {
            link.close()
            nat.close()
        }
        guard case .tcp(let endpoint) = link.address else {
            Issue.record("not a TCP address: \(link.address)")
            return
        }
        #expect(endpoint.address == .loopback && endpoint.port != 0)
        let client = try #require(StreamTestClient(link.address))
        try Self.expectARP(client, gatewayMAC: nat.configuration.gatewayMAC)
    }

    @Test("a frame split across writes, and two frames in one write, are both reassembled")
    func framingAcrossWrites() throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        let client = try #require(StreamTestClient(link.address))
        let arp = arpRequest(for: natGateway)
        let framed = [0, 0, 0, UInt8(arp.count)] + arp
        for piece in [framed[0..<2], framed[2..<9], framed[9...]] {
            client.sendRaw(Array(piece))
            usleep(20_000)
        }
        #expect(client.receiveFrame { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp } != nil)
        client.sendRaw(framed + framed)
        #expect(client.receiveFrame { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp } != nil)
        #expect(client.receiveFrame { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp } != nil)
        #expect(Self.counter(link, "stream_frames_in") == 3)
        #expect(nat.counter("arp_replies") == 3)
    }

    @Test(
        "a length that lies ends the connection and is counted; the next client is served",
        arguments: [[0, 0, 0, 0], [0, 1, 0, 0x14], [0xFF, 0xFF, 0xFF, 0xFF]] as [[UInt8]])
    func lyingLengths(header: [UInt8]) throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        let liar = try #require(StreamTestClient(link.address))
        liar.sendRaw(header + [UInt8](repeating: 0xAB, count: 64))
        #expect(liar.closedByServer())
        #expect(Self.counter(link, "stream_drop_bad_length") == 1)
        #expect(Self.counter(link, "stream_frames_in") == 0)
        let next = try #require(StreamTestClient(link.address))
        try Self.expectARP(next, gatewayMAC: nat.configuration.gatewayMAC)
        #expect(Self.counter(link, "stream_connections") == 2)
    }

    @Test("the largest frame is accepted and one byte more is refused")
    func lengthBounds() throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        let client = try #require(StreamTestClient(link.address))
        client.send(frame: [UInt8](repeating: 0xFF, count: StreamLink.maximumFrameLength))
        client.send(frame: arpRequest(for: natGateway))
        #expect(client.receiveFrame { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp } != nil)
        #expect(Self.counter(link, "stream_frames_in") == 2)
        client.send(frame: [UInt8](repeating: 0xFF, count: StreamLink.maximumFrameLength + 1))
        #expect(client.closedByServer())
        #expect(Self.counter(link, "stream_drop_bad_length") == 1)
    }

    @Test("a second client while one is connected is closed and counted; the first keeps working")
    func oneClientAtATime() throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        let first = try #require(StreamTestClient(link.address))
        try Self.expectARP(first, gatewayMAC: nat.configuration.gatewayMAC)
        let second = try #require(StreamTestClient(link.address))
        #expect(second.closedByServer())
        #expect(Self.counter(link, "stream_rejected_busy") == 1)
        try Self.expectARP(first, gatewayMAC: nat.configuration.gatewayMAC)
    }

    @Test("a client that disconnects is counted, and close removes the unix socket file")
    func disconnectAndClose() throws {
        let path = temporaryPath("stream.sock")
        let (link, nat) = try Self.link(.unix(path))
        defer { nat.close() }
        do {
            let client = try #require(StreamTestClient(link.address))
            try Self.expectARP(client, gatewayMAC: nat.configuration.gatewayMAC)
        }
        for _ in 0..<300 where link.isConnected { usleep(10_000) }
        #expect(!link.isConnected)
        #expect(Self.counter(link, "stream_disconnects") == 1)
        #expect(access(path, F_OK) == 0)
        link.close()
        link.close()
        #expect(access(path, F_OK) != 0)
    }

    @Test(
        "frames for a client that does not read wait up to the backlog limit, then drop and count; the rest arrive"
    )
    func backlogAndDrops() throws {
        let attachment = NullAttachment()
        let link = try StreamLink(listeningOn: .unix(temporaryPath("stream.sock")), attachment: attachment)
        defer { link.close() }
        // No client yet: dropped and counted.
        link.port.deliver([UInt8](repeating: 1, count: 60))
        for _ in 0..<300 where Self.counter(link, "stream_drop_no_client") == 0 { usleep(10_000) }
        #expect(Self.counter(link, "stream_drop_no_client") == 1)

        let client = try #require(StreamTestClient(link.address))
        for _ in 0..<300 where !link.isConnected { usleep(10_000) }
        // Larger than a frame may be: dropped and counted, the connection stays.
        link.port.deliver([UInt8](repeating: 2, count: StreamLink.maximumFrameLength + 1))
        // 8 MB for a client that reads nothing yet: the first 4 MiB or so wait, the rest is dropped.
        let frame = (0..<60_000).map { UInt8(truncatingIfNeeded: $0) }
        var accepted = 0
        for _ in 0..<140 {
            if link.port.deliver(frame) { accepted += 1 }
            if accepted % 32 == 0 { usleep(20_000) }
        }
        for _ in 0..<300 where link.port.queuedFrames > 0 { usleep(10_000) }
        let dropped = Self.counter(link, "stream_drop_backlog")
        let sent = Self.counter(link, "stream_frames_out")
        #expect(dropped > 0 && sent > 0 && dropped + sent == UInt64(accepted), "\(link.counters)")
        #expect(Self.counter(link, "stream_drop_oversize") == 1)
        // Everything queued arrives, framed as sent.
        var received: UInt64 = 0
        while received < sent, let next = client.receiveFrame(timeout: 5) {
            #expect(next == frame)
            received += 1
        }
        #expect(received == sent)
        #expect(link.isConnected && Self.counter(link, "stream_disconnects") == 0)
    }

    @Test("random bytes from clients, including random lengths, never trap; the link keeps serving new clients")
    func hostileStreams() throws {
        let (link, nat) = try Self.link()
        defer {
            link.close()
            nat.close()
        }
        var random = SplitMix64(seed: 0x766E_6963)
        for round in 0..<40 {
            // One client at a time: wait until the link has seen the last one go.
            for _ in 0..<300 where link.isConnected { usleep(1_000) }
            guard let client = StreamTestClient(link.address) else {
                Issue.record("round \(round): no connection")
                break
            }
            for _ in 0..<8 {
                let count = Int(random.next() % 3000)
                var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                // Half the time, a plausible length in front: some frames get through to the NAT.
                if random.next() % 2 == 0 {
                    let length = UInt32(bytes.count)
                    bytes = [0, 0, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + bytes
                }
                client.sendRaw(bytes)
            }
            // Accepted before it goes away, so the next client never finds the link busy.
            for _ in 0..<300 where Self.counter(link, "stream_connections") <= round { usleep(1_000) }
        }
        for _ in 0..<300 where link.isConnected { usleep(1_000) }
        let next = try #require(StreamTestClient(link.address))
        try Self.expectARP(next, gatewayMAC: nat.configuration.gatewayMAC)
        #expect(Self.counter(link, "stream_connections") == 41)
        print("hostile streams: \(link.counters.filter { $0.value != 0 })")
    }

    @Test("addresses that cannot be served are errors naming them")
    func badAddresses() throws {
        let nat = try NATAttachment(configuration: loopbackNATConfiguration())
        defer { nat.close() }
        let long = "/tmp/" + String(repeating: "x", count: 200)
        #expect(throws: HostLinkError.self) { _ = try StreamLink(listeningOn: .unix(long), attachment: nat) }
        let file = temporaryPath("not-a-socket")
        _ = FileManager.default.createFile(atPath: file, contents: Data([1]))
        defer { unlink(file) }
        do {
            _ = try StreamLink(listeningOn: .unix(file), attachment: nat)
            Issue.record("a regular file was replaced by a socket")
        } catch {
            #expect(error.description.contains(file) && error.description.contains("not a socket"))
        }
        let taken = LoopbackTCPListener()
        do {
            _ = try StreamLink(listeningOn: .tcp(IPv4Endpoint(.loopback, taken.port)), attachment: nat)
            Issue.record("a port in use was bound")
        } catch {
            #expect(error.description.contains("127.0.0.1:\(taken.port)"))
        }
        #expect(StreamAddress("unix:/a/b") == .unix("/a/b"))
        #expect(StreamAddress("tcp:127.0.0.1:5555") == .tcp(IPv4Endpoint(.loopback, 5555)))
        for bad in ["", "unix:", "tcp:127.0.0.1", "tcp:localhost:1", "udp:1.2.3.4:5", "tcp:1.2.3.4:99999"] {
            #expect(StreamAddress(bad) == nil, "\(bad)")
        }
    }
}

/// A small seeded generator (SplitMix64), so a failing hostile-input run can be repeated.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
