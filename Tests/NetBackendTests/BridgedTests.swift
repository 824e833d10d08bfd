import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

/// A veth pair whose far end is in a namespace of the test's own, with the kernel's stack behind it.
final class VethLab {
    let namespace: TestNamespace
    let outside: String
    let inside: String

    /// `nil`, with a SKIP line, without root.
    init?(prefix: String) throws {
        guard geteuid() == 0 else {
            print("SKIP bridged tests: needs root (ip netns, veth, AF_PACKET)")
            return nil
        }
        namespace = try TestNamespace(prefix: prefix)
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        (outside, inside) = ("bro\(suffix)", "bri\(suffix)")
        try Self.require(shell(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside]))
        try Self.require(shell(["ip", "link", "set", inside, "netns", namespace.name]))
        try Self.require(shell(["ip", "link", "set", outside, "up"]))
        try inNamespace(["ip", "link", "set", inside, "up"])
    }

    deinit {
        shell(["ip", "link", "del", outside])
        namespace.remove()
    }

    /// Runs `command` in the namespace; throws its output when it fails.
    func inNamespace(_ command: [String]) throws { try Self.require(namespace.run(command)) }

    static func require(_ result: (status: Int32, output: String)) throws {
        guard result.status == 0 else { throw HostLinkError.invalid(result.output) }
    }
}

/// The IPv4 packets among `frames` (VLAN-tagged or not) that are ICMP echo replies, with their tag (0 for none).
func echoReplies(in frames: [[UInt8]]) -> [(packet: IPv4Packet, vlan: UInt16)] {
    frames.compactMap { frame in
        let tagged = frame.count > 18 && frame.bigEndian16(at: 12) == 0x8100
        let start = tagged ? 18 : 14
        guard frame.count > start, frame.bigEndian16(at: start - 2) == EtherType.ipv4,
            let packet = try? IPv4Packet(parsing: frame, at: start), packet.proto == IPProtocolNumber.icmp,
            packet.payload.first == 0
        else { return nil }
        return (packet, tagged ? frame.bigEndian16(at: 14) & 0x0FFF : 0)
    }
}

/// `frame` with an 802.1Q tag for `vlan` after its addresses.
func tagged(_ frame: [UInt8], vlan: UInt16) -> [UInt8] {
    var bytes = Array(frame[0..<12])
    bytes.appendBigEndian16(0x8100)
    bytes.appendBigEndian16(vlan)
    return bytes + frame[12...]
}

@Suite("Bridged", .serialized)
struct BridgedTests {
    let guestMAC = mac(0x33)

    /// A VLAN 100 peer on a packet socket: sends a frame tagged 100 to the card (argv 2, hex), then prints
    /// `tagged-out-seen` when a frame tagged 100 from the card carrying `vnic-vlan-out` arrives (the tag in the frame,
    /// or in PACKET_AUXDATA when the interface stripped it).
    static let vlanPeer = """
        import socket, struct, sys, time
        card = bytes.fromhex(sys.argv[2])
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        s.bind((sys.argv[1], 0))
        s.setsockopt(263, 8, 1)
        s.send(card + bytes.fromhex('020000000099') + b'\\x81\\x00\\x00\\x64\\x88\\xb5' + b'vnic-vlan-in' + bytes(40))
        s.settimeout(1)
        deadline = time.time() + 8
        while time.time() < deadline:
            try:
                data, ancillary, flags, address = s.recvmsg(65536, socket.CMSG_SPACE(20))
            except socket.timeout:
                continue
            vlan = int.from_bytes(data[14:16], 'big') & 0xfff if data[12:14] == b'\\x81\\x00' else None
            for level, kind, value in ancillary:
                if level == 263 and kind == 8 and len(value) >= 20:
                    status, _, _, _, _, tci, _ = struct.unpack('IIIHHHH', value[:20])
                    if status & 0x10:
                        vlan = tci & 0xfff
            if data[6:12] == card and vlan == 100 and b'vnic-vlan-out' in data:
                print('tagged-out-seen', flush=True)
                break
        """

    /// Resolves `peer` by ARP from `source` (on `vlan`, when not 0) and answers the peer's MAC.
    func resolve(_ peer: IPv4Address, from source: IPv4Address, vlan: UInt16 = 0, card: FramePort) -> MACAddress? {
        let request = arpRequest(for: peer, from: guestMAC, at: source)
        card.send(vlan == 0 ? request : tagged(request, vlan: vlan))
        let offset = vlan == 0 ? 0 : 4
        let reply = card.receive(timeout: 5) { frame in
            frame.count >= 42 + offset && frame.bigEndian16(at: 12 + offset) == EtherType.arp
                && (vlan == 0 || frame.bigEndian16(at: 14) & 0x0FFF == vlan)
        }
        return reply.flatMap { MACAddress(bytes: $0[(22 + offset)..<(28 + offset)]) }
    }

    @Test("a card bridged onto a veth reaches the kernel in a namespace: ARP, ping, a VLAN both ways, 9000-byte frames")
    func kernelBehindAVeth() throws {
        guard let lab = try VethLab(prefix: "vnic-br") else { return }
        try VethLab.require(shell(["ip", "link", "set", lab.outside, "mtu", "9000"]))
        try lab.inNamespace(["ip", "link", "set", lab.inside, "mtu", "9000"])
        try lab.inNamespace(["ip", "addr", "add", "192.168.233.2/24", "dev", lab.inside])

        let bridged = try BridgedAttachment(configuration: BridgedConfiguration(parsing: lab.outside))
        #expect(bridged.mtu == 9000)
        let card = FramePort()
        card.attach(bridged)
        defer { card.detach() }
        #expect(eventually { card.carrier }, "the veth's carrier is up")

        let here = IPv4Address(192, 168, 233, 1)
        let peer = IPv4Address(192, 168, 233, 2)
        let peerMAC = try #require(resolve(peer, from: here, card: card), "an ARP reply from the namespace")
        for size in [56, 8000] {
            let echo = guestPacket(
                to: peer, proto: IPProtocolNumber.icmp,
                payload: echoRequest(identifier: 3, sequence: UInt16(size), data: [UInt8](repeating: 7, count: size)),
                from: here)
            card.send(ethernetFrame(to: peerMAC, from: guestMAC, type: EtherType.ipv4, payload: echo))
            let reply = card.receive(timeout: 5) { !echoReplies(in: [$0]).isEmpty }.flatMap {
                echoReplies(in: [$0]).first
            }
            #expect(reply?.packet.source == peer && reply?.packet.payload.count == 8 + size, "echo of \(size) bytes")
        }

        // VLAN 100 (this host's kernel has no 8021q, so a packet socket in the namespace plays the VLAN interface):
        // a tagged frame reaches the card tagged, whether or not the veth stripped the tag, and the card's tagged
        // frame leaves tagged.
        let peerSide = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            lab.namespace.command([
                "python3", "-c", Self.vlanPeer, lab.inside, guestMAC.bytes.map { String(format: "%02x", $0) }.joined(),
            ]))
        defer { _ = peerSide.stop() }
        let tagIn = card.receive(timeout: 5) { $0.count > 18 && $0.bigEndian16(at: 12) == 0x8100 }
        #expect(tagIn.map { $0.bigEndian16(at: 14) & 0x0FFF } == 100, "the namespace's tagged frame arrived tagged")
        var out = frame(to: mac(0x99), from: guestMAC, length: 60)
        out.replaceSubrange(14..<27, with: Array("vnic-vlan-out".utf8))
        card.send(tagged(out, vlan: 100))
        #expect(
            peerSide.waitForOutput("tagged-out-seen", timeout: 5),
            "the card's frame left on VLAN 100: \(peerSide.output)")
        #expect(bridged.counter("bridged_frames_out") == 4 && bridged.counter("bridged_frames_in") >= 4)
        card.send([UInt8](repeating: 0, count: 9000 + 14 + 4 + 1))
        #expect(bridged.counter("bridged_drop_oversize_out") == 1)
    }

    @Test("the link follows the interface's carrier; a vanished interface leaves it down; close releases the socket")
    func linkFollowsTheInterface() throws {
        guard let lab = try VethLab(prefix: "vnic-brl") else { return }
        let bridged = try AttachmentSetting(parsing: "bridged:\(lab.outside)").makeAttachment()
        let card = FramePort()
        card.attach(bridged)
        #expect(eventually { card.carrier })
        let index = Int(if_nametoindex(lab.outside))
        #expect(packetSockets(on: index) == 1, "one AF_PACKET socket on the interface")

        try lab.inNamespace(["ip", "link", "set", lab.inside, "down"])
        #expect(eventually(timeout: 5) { !card.carrier }, "the peer went down, so did the veth's carrier")
        try lab.inNamespace(["ip", "link", "set", lab.inside, "up"])
        #expect(eventually(timeout: 5) { card.carrier }, "and came back")

        card.detach()
        (bridged as? BridgedAttachment)?.close()
        #expect(packetSockets(on: index) == 0, "closed")

        let again = try BridgedAttachment(configuration: BridgedConfiguration(interface: lab.outside))
        let second = FramePort()
        second.attach(again)
        defer { second.detach() }
        shell(["ip", "link", "del", lab.outside])
        #expect(eventually(timeout: 5) { !second.carrier }, "the interface is gone")
        #expect(again.counter("bridged_interface_gone") >= 1)
        second.send(frame(to: .broadcast, from: guestMAC))  // counted, not a crash
        #expect(again.counter("bridged_send_errors") + again.counter("bridged_drop_send_busy") >= 1)
    }

    @Test("a datagram whose checksum the namespace left to the veth's offload reaches the card with it finished")
    func checksumsLeftToTheHardwareAreFinished() throws {
        guard let lab = try VethLab(prefix: "vnic-brc") else { return }
        try lab.inNamespace(["ip", "addr", "add", "192.168.237.2/24", "dev", lab.inside])
        try lab.inNamespace(["ip", "neigh", "add", "192.168.237.1", "lladdr", "\(guestMAC)", "dev", lab.inside])
        let bridged = try BridgedAttachment(configuration: BridgedConfiguration(interface: lab.outside))
        let card = FramePort()
        card.attach(bridged)
        defer { card.detach() }
        let send =
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'v' * 100, ('192.168.237.1', 9999))"
        try lab.inNamespace(["python3", "-c", send])
        let frame = card.receive(timeout: 5) { frame in
            guard frame.count > 14, frame.bigEndian16(at: 12) == EtherType.ipv4,
                let packet = try? IPv4Packet(parsing: frame, at: 14)
            else { return false }
            return packet.proto == IPProtocolNumber.udp && packet.payload.count >= 8
                && packet.payload.bigEndian16(at: 2) == 9999
        }
        let packet = try #require(frame.flatMap { try? IPv4Packet(parsing: $0, at: 14) }, "the datagram arrived")
        let sum = transportChecksum(
            source: .v4(packet.source), destination: .v4(packet.destination), proto: IPProtocolNumber.udp,
            segment: Array(packet.payload))
        #expect(sum == 0, "the UDP checksum verifies")
        #expect(bridged.counter("bridged_offloads_finished") >= 1, "it was left partial, and finished here")
    }

    @Test("a missing interface or a bad name is a clear error")
    func errors() throws {
        for (setting, reason) in [
            ("bridged:vnicnosuch0", "bridged vnicnosuch0: no such interface"),
            ("bridged:a/b", "is not an interface name"), ("bridged:", "is not an interface name"),
            ("bridged:" + String(repeating: "e", count: 16), "is not an interface name"),
        ] {
            #expect {
                try AttachmentSetting(parsing: setting).makeAttachment()
            } throws: { error in
                "\(error)".contains(reason)
            }
        }
    }
}

/// The AF_PACKET sockets bound to interface `index`, counted from /proc/net/packet.
func packetSockets(on index: Int) -> Int {
    let text = (try? String(contentsOfFile: "/proc/net/packet", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").dropFirst().filter { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 && Int(fields[4]) == index
    }.count
}
