import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

/// A UDP socket on loopback standing in for the tunnel's peer as QEMU's `-netdev dgram` is: one raw frame per
/// datagram, no header.
final class DatagramPeer {
    let fd: Int32
    let endpoint: IPEndpoint

    init(ipv6: Bool = false) throws {
        fd = HostSocket.open(type: HostSocket.datagram, ipv6: ipv6)
        let loopback: IPAddress = ipv6 ? .v6(.loopback) : .loopback
        guard fd >= 0, HostSocket.bind(fd, to: IPEndpoint(loopback, 0)) == 0, let bound = HostSocket.localAddress(fd)
        else { throw HostLinkError.invalid("peer socket") }
        endpoint = bound
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], to endpoint: IPEndpoint) {
        _ = HostSocket.send(fd, bytes, to: endpoint)
    }

    /// The next datagram within `timeout` seconds.
    func receive(timeout: Double = 3) -> [UInt8]? {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count >= 0 ? Array(buffer[0..<count]) : nil
    }
}

/// The UDP sockets bound to `port` on this host, counted from /proc/net/udp and udp6.
func udpSockets(onPort port: UInt16) -> Int {
    let suffix = ":" + String(format: "%04X", port)
    return ["/proc/net/udp", "/proc/net/udp6"].reduce(0) { total, path in
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return total
            + text.split(separator: "\n").dropFirst().filter { line in
                line.split(separator: " ").dropFirst().first.map { $0.hasSuffix(suffix) } ?? false
            }.count
    }
}

/// Waits (bounded) until `condition` holds.
func eventually(timeout: Double = 3, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        guard Date() < deadline else { return false }
        usleep(5_000)
    }
    return true
}

@Suite("UDP tunnel")
struct UDPTunnelTests {
    func tunnel(_ text: String) throws -> UDPTunnelAttachment {
        try UDPTunnelAttachment(configuration: UDPTunnelConfiguration(parsing: text))
    }

    @Test("two cards on a UDP tunnel over loopback exchange frames both ways, whole and in order")
    func twoCards() throws {
        let defaults = UDPTunnelConfiguration()
        #expect(defaults.description == "sport=4444,dport=4445,dest=127.0.0.1", "VirtualBox's defaults")

        let portB = freeLoopbackPort()
        let a = try tunnel("sport=0,dport=\(portB),dest=127.0.0.1")
        let b = try tunnel("sport=\(portB),dport=\(a.localEndpoint.port),dest=127.0.0.1")
        let cardA = FramePort()
        let cardB = FramePort()
        cardA.attach(a)
        cardB.attach(b)
        defer {
            cardA.detach()
            cardB.detach()
        }
        #expect(cardA.carrier && cardB.carrier)

        let frames = [60, 1514, 9018].enumerated().map { frame(to: mac(2), from: mac(1), tag: UInt32($0), length: $1) }
        for bytes in frames { cardA.send(bytes) }
        let arrived = cardB.receive(atLeast: frames.count)
        #expect(arrived == frames, "B got \(arrived.map(\.count)) bytes")
        let reply = frame(to: mac(1), from: mac(2), tag: 99, length: 1514)
        cardB.send(reply)
        #expect(cardA.receive() == [reply])
        #expect(a.counter("udptunnel_frames_out") == 3 && b.counter("udptunnel_frames_in") == 3)
        #expect(a.counter("udptunnel_bytes_out") == UInt64(60 + 1514 + 9018))
    }

    @Test(
        "a raw datagram peer, as QEMU's -netdev dgram, sees the bare frame; short and oversized datagrams are counted")
    func rawPeerAndHostileDatagrams() throws {
        let peer = try DatagramPeer()
        let tunnel = try tunnel("sport=0,dport=\(peer.endpoint.port),dest=127.0.0.1")
        let card = FramePort()
        card.attach(tunnel)
        defer { card.detach() }
        let out = frame(to: mac(9), from: mac(1), tag: 7, length: 100)
        card.send(out)
        #expect(peer.receive() == out, "one frame, no header")

        let local = IPEndpoint(.loopback, tunnel.localEndpoint.port)
        let into = frame(to: mac(1), from: mac(9), tag: 8)
        peer.send(into, to: local)
        #expect(card.receive() == [into])
        for length in [0, 5, 13] { peer.send([UInt8](repeating: 0xAB, count: length), to: local) }
        #expect(eventually { tunnel.counter("udptunnel_drop_short") == 3 })

        card.send([UInt8](repeating: 0, count: UDPTunnelAttachment.maximumFrameLength + 1))
        #expect(tunnel.counter("udptunnel_drop_oversize_out") == 1)
        #expect(card.drain().isEmpty, "nothing hostile reached the card")

        // Over IPv6 a datagram can be longer than the largest frame the tunnel carries.
        let peer6 = try DatagramPeer(ipv6: true)
        let tunnel6 = try self.tunnel("sport=0,dport=\(peer6.endpoint.port),dest=::1")
        peer6.send([UInt8](repeating: 1, count: 65_520), to: IPEndpoint(.v6(.loopback), tunnel6.localEndpoint.port))
        #expect(eventually { tunnel6.counter("udptunnel_drop_oversize_in") == 1 })
        let card6 = FramePort()
        card6.attach(tunnel6)
        defer { card6.detach() }
        card6.send(out)
        #expect(peer6.receive() == out, "IPv6 destinations work")
    }

    @Test("accept=dest takes datagrams only from the peer; VirtualBox's default takes them from anyone")
    func acceptOnlyTheDestination() throws {
        let peer = try DatagramPeer()
        let stranger = try DatagramPeer()
        for (text, fromStranger) in [("accept=dest", false), ("accept=any", true)] {
            let tunnel = try tunnel("sport=0,dport=\(peer.endpoint.port),dest=127.0.0.1,\(text)")
            let card = FramePort()
            card.attach(tunnel)
            defer { card.detach() }
            let local = IPEndpoint(.loopback, tunnel.localEndpoint.port)
            stranger.send(frame(to: mac(1), from: mac(5), tag: 5), to: local)
            peer.send(frame(to: mac(1), from: mac(6), tag: 6), to: local)
            let frames = card.receive(atLeast: fromStranger ? 2 : 1)
            #expect(frames.map(tag(of:)).sorted() == (fromStranger ? [5, 6] : [6]), "\(text)")
            #expect(tunnel.counter("udptunnel_drop_stranger") == (fromStranger ? 0 : 1), "\(text)")
        }
    }

    @Test("the setting string parses VirtualBox's property names; a bad property or a port in use is a clear error")
    func settings() throws {
        guard case .udpTunnel(let defaults) = try AttachmentSetting(parsing: "udptunnel") else {
            Issue.record("not a UDP tunnel")
            return
        }
        #expect(defaults == UDPTunnelConfiguration())
        let text = "udptunnel:sport=5000;dport=5001;dest=::1;local=::1;accept=dest"
        guard case .udpTunnel(let parsed) = try AttachmentSetting(parsing: text) else {
            Issue.record("not a UDP tunnel")
            return
        }
        #expect(parsed.sourcePort == 5000 && parsed.destinationPort == 5001 && parsed.acceptsOnlyDestination)
        #expect(parsed.destination == .v6(.loopback) && parsed.localAddress == .v6(.loopback))
        #expect(
            try AttachmentSetting(parsing: "udptunnel:\(parsed)").description
                == "udptunnel:sport=5000,dport=5001,dest=::1,local=::1,accept=dest")

        let bad: [(String, String)] = [
            ("udptunnel:sport=70000", "sport=70000: expected a port"),
            ("udptunnel:dport=0", "dport=0: expected a port, 1 to 65535"),
            ("udptunnel:dest=example", "dest=example: expected an IPv4 or IPv6 address"),
            ("udptunnel:colour=red", "unknown property 'colour=red'"),
            ("udptunnel:sport", "unknown property 'sport'"),
            ("udptunnel:dest=::1,local=127.0.0.1", "of different families"),
        ]
        for (setting, reason) in bad {
            #expect {
                try AttachmentSetting(parsing: setting)
            } throws: { error in
                "\(error)".contains(reason) && "\(error)".contains(setting)
            }
        }

        let holder = try DatagramPeer()
        #expect {
            try AttachmentSetting(parsing: "udptunnel:sport=\(holder.endpoint.port)").makeAttachment()
        } throws: { error in
            "\(error)".contains("bind 0.0.0.0:\(holder.endpoint.port)") && "\(error)".contains("in use")
        }
    }

    @Test("closing or dropping the tunnel closes its socket; frames sent afterwards are counted")
    func noDescriptorLeftOpen() throws {
        for closeExplicitly in [true, false] {
            let port = freeLoopbackPort()
            let card = FramePort()
            do {
                let tunnel = try tunnel("sport=\(port),dport=9,dest=127.0.0.1")
                card.attach(tunnel)
                #expect(udpSockets(onPort: port) == 1)
                if closeExplicitly {
                    tunnel.close()
                    card.send(frame(to: mac(2), from: mac(1)))
                    #expect(tunnel.counter("udptunnel_drop_link_down") == 1)
                    #expect(!card.carrier, "no socket, no carrier")
                }
                card.detach()
            }
            #expect(udpSockets(onPort: port) == 0, "closed \(closeExplicitly ? "by close()" : "when dropped")")
        }
    }
}
