import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("VXLAN")
struct VXLANTests {
    @Test("a card on VXLAN 42 reaches the Linux stack behind a vxlan device in a namespace: ARP and ping")
    func linuxVXLANDevice() throws {
        guard geteuid() == 0 else {
            print("SKIP VXLAN namespace test: needs root (ip netns, veth, vxlan)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-vxlan")
        defer { namespace.remove() }
        // A veth pair carries the outer packets: 10.231.N.1 here, 10.231.N.2 in the namespace, where vx42 is the
        // tunnel endpoint with 192.168.231.2 behind it.
        let suffix = String(namespace.name.hashValue & 0xFFFF, radix: 16)
        let (outside, inside) = ("vxo\(suffix)", "vxi\(suffix)")
        let subnet = Int.random(in: 1...250)
        let (here, there) = (IPv4Address(10, 231, UInt8(subnet), 1), IPv4Address(10, 231, UInt8(subnet), 2))
        for command in [
            ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
            ["ip", "link", "set", inside, "netns", namespace.name],
            ["ip", "addr", "add", "\(here)/30", "dev", outside], ["ip", "link", "set", outside, "up"],
        ] {
            let result = shell(command)
            #expect(result.status == 0, "\(command.joined(separator: " ")): \(result.output)")
        }
        defer { shell(["ip", "link", "del", outside]) }
        for command in [
            ["ip", "addr", "add", "\(there)/30", "dev", inside], ["ip", "link", "set", inside, "up"],
            [
                "ip", "link", "add", "vx42", "type", "vxlan", "id", "42", "local", "\(there)", "remote", "\(here)",
                "dstport", "4789", "dev", inside,
            ],
            ["ip", "addr", "add", "192.168.231.2/24", "dev", "vx42"], ["ip", "link", "set", "vx42", "up"],
        ] {
            let result = namespace.run(command)
            #expect(result.status == 0, "\(command.joined(separator: " ")): \(result.output)")
        }

        let vxlan = try VXLANAttachment(
            configuration: VXLANConfiguration(parsing: "vni=42,remote=\(there),local=\(here)"))
        #expect(vxlan.configuration.innerMTU == 1450, "1500 less the outer IPv4, UDP, VXLAN and inner Ethernet headers")
        let card = FramePort()
        card.attach(vxlan)
        defer { card.detach() }
        let guestMAC = mac(0x42)
        let guestIP = IPv4Address(192, 168, 231, 1)
        let peerIP = IPv4Address(192, 168, 231, 2)

        card.send(arpRequest(for: peerIP, from: guestMAC, at: guestIP))
        let reply = card.receive(timeout: 5) { $0.count >= 42 && $0.bigEndian16(at: 12) == EtherType.arp }
        let peerMAC = try #require(
            reply.flatMap { MACAddress(bytes: $0[22..<28]) }, "an ARP reply from the vxlan device")

        let echo = guestPacket(
            to: peerIP, proto: IPProtocolNumber.icmp, payload: echoRequest(identifier: 7, sequence: 1), from: guestIP)
        card.send(ethernetFrame(to: peerMAC, from: guestMAC, type: EtherType.ipv4, payload: echo))
        let answer = card.receive(timeout: 5) { !echoReplies(in: [$0]).isEmpty }.flatMap { echoReplies(in: [$0]).first }
        #expect(answer?.packet.source == peerIP, "an echo reply from 192.168.231.2 through the tunnel")
        #expect(vxlan.counter("vxlan_frames_in") >= 2 && vxlan.counter("vxlan_frames_out") == 2)
    }

    @Test("datagrams without the I flag, for another VNI or too short are dropped and counted; settings are checked")
    func hostileDatagramsAndSettings() throws {
        let peer = try DatagramPeer()
        let vxlan = try VXLANAttachment(
            configuration: VXLANConfiguration(
                parsing: "vni=7;remote=127.0.0.1;local=127.0.0.2;port=\(peer.endpoint.port)"))
        let card = FramePort()
        card.attach(vxlan)
        defer { card.detach() }
        // Both ends use one port, as VXLAN does: the attachment on 127.0.0.2, the peer on 127.0.0.1.
        let target = vxlan.localEndpoint
        let inner = frame(to: mac(1), from: mac(2), tag: 9)
        peer.send(VXLANAttachment.header(vni: 7) + inner, to: target)
        #expect(card.receive() == [inner], "a frame for VNI 7 arrives without its header")
        peer.send([0, 0, 0, 0, 0, 0, 7, 0] + inner, to: target)  // no I flag
        peer.send(VXLANAttachment.header(vni: 8) + inner, to: target)  // another segment
        peer.send([0x08, 0, 0], to: target)  // shorter than the header
        peer.send(VXLANAttachment.header(vni: 7) + [1, 2, 3], to: target)  // shorter than a frame
        #expect(eventually { vxlan.counter("vxlan_drop_bad_header") == 3 && vxlan.counter("vxlan_drop_short") == 1 })
        #expect(card.drain().isEmpty)
        card.send(inner)
        #expect(peer.receive() == VXLANAttachment.header(vni: 7) + inner, "the header then the frame")
        card.send(frame(to: mac(1), from: mac(2), length: 1450 + 14 + 4 + 1))
        #expect(vxlan.counter("vxlan_drop_oversize_out") == 1)

        for (setting, reason) in [
            ("vxlan:remote=10.0.0.1", "vni=N and remote=IP are required"),
            ("vxlan:vni=16777216,remote=10.0.0.1", "vni=16777216: expected a VNI"),
            ("vxlan:vni=1,remote=::1,local=127.0.0.1", "of different families"),
            ("vxlan:vni=1,remote=10.0.0.1,mtu=100", "mtu=100: expected an MTU"),
            ("vxlan:vni=1,remote=10.0.0.1,ttl=3", "unknown property 'ttl=3'"),
        ] {
            #expect {
                try AttachmentSetting(parsing: setting)
            } throws: { error in
                "\(error)".contains(reason)
            }
        }
        let parsed = try AttachmentSetting(parsing: "vxlan:vni=42;remote=fd00::2;mtu=9000")
        #expect(parsed.description == "vxlan:vni=42,remote=fd00::2,port=4789,mtu=9000")
        if case .vxlan(let configuration) = parsed { #expect(configuration.innerMTU == 9000 - 70) }
    }
}
