import Foundation
import Glibc
import NICTestSupport
import Testing

/// The host-facing attachments against the peers a user would put on the other side: a stock QEMU guest with QEMU's
/// own e1000 on a UDP tunnel, and Debian's vde_switch with slirpvde and a stock QEMU guest on `-netdev vde`.
extension RealGuestTests {
    /// The card the host-facing attachment tests put in the patched QEMU.
    static let attachmentCard = allCards[2]  // 82540em

    /// The stock QEMU's `-netdev` options that reach a vnic UDP tunnel whose ports are `(vnic, qemu)`.
    static let tunnelPeers: [(name: String, netdev: @Sendable (UInt16, UInt16) -> String)] = [
        (
            "-netdev dgram",
            { vnic, qemu in
                "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=\(qemu),"
                    + "remote.type=inet,remote.host=127.0.0.1,remote.port=\(vnic)"
            }
        ),
        ("-netdev socket,udp=", { vnic, qemu in "socket,id=net0,udp=127.0.0.1:\(vnic),localaddr=127.0.0.1:\(qemu)" }),
    ]

    @Test(
        "a UDP tunnel to a stock QEMU guest with its own e1000: ping both ways and 10 MB each way, static addresses",
        arguments: tunnelPeers.indices)
    func udpTunnelToStockQEMU(peer: Int) throws {
        guard let prerequisites = Self.prerequisites() else { return }
        guard let stock = prerequisites.stockQEMU else {
            print("SKIP UDP tunnel guest test: no qemu-system-x86_64 from Debian")
            return
        }
        let (name, netdev) = Self.tunnelPeers[peer]
        let vnicPort = freeLoopbackPort()
        let qemuPort = freeLoopbackPort()
        let card = Self.attachmentCard
        let ours = try GuestMachine(
            qemu: prerequisites.vnicQEMU, prerequisites: prerequisites,
            device: "vnic-pci,model=\(card.model),mac=\(card.mac),"
                + "attach=udptunnel:sport=\(vnicPort);dport=\(qemuPort);dest=127.0.0.1",
            kernelArguments:
                "vnic.driver=e1000 vnic.steps=peer vnic.ip=192.168.77.1 vnic.peer=192.168.77.2",
            netdev: nil)
        defer { ours.stop() }
        let theirs = try GuestMachine(
            qemu: stock, prerequisites: prerequisites, device: "e1000,netdev=net0,romfile=",
            kernelArguments:
                "vnic.driver=e1000 vnic.steps=peer vnic.ip=192.168.77.2 vnic.peer=192.168.77.1",
            netdev: netdev(vnicPort, qemuPort))
        defer { theirs.stop() }

        _ = Self.step(ours, "probe", timeout: 90)
        _ = Self.step(theirs, "probe", timeout: 90)
        _ = Self.step(ours, "peer-ping", timeout: 90)
        _ = Self.step(theirs, "peer-ping", timeout: 90)
        let ourFile = Self.value("md5", in: Self.step(ours, "serve", timeout: 60).detail)
        let theirFile = Self.value("md5", in: Self.step(theirs, "serve", timeout: 60).detail)
        let fetchedByThem = Self.step(theirs, "download", timeout: 120).detail
        let fetchedByUs = Self.step(ours, "download", timeout: 120).detail
        #expect(ourFile != nil && Self.value("md5", in: fetchedByThem) == ourFile, "vnic → \(name): 10 MB intact")
        #expect(theirFile != nil && Self.value("md5", in: fetchedByUs) == theirFile, "\(name) → vnic: 10 MB intact")
        #expect(Self.value("bytes", in: fetchedByThem) == String(10 << 20))
        #expect(Self.value("bytes", in: fetchedByUs) == String(10 << 20))
        print("UDP tunnel to \(name): ping both ways, 10 MB each way intact")
    }

    @Test(
        "a VDE switch with slirpvde: DHCP and 10 MB through it, a stock QEMU guest pings the card, the link follows the switch"
    )
    func vdeSwitchWithSlirpvde() throws {
        guard let prerequisites = Self.prerequisites() else { return }
        guard let stock = prerequisites.stockQEMU else {
            print("SKIP VDE guest test: no qemu-system-x86_64 from Debian")
            return
        }
        guard let vdeSwitch = VDELab() else { return }
        try vdeSwitch.start()
        defer { vdeSwitch.stop() }
        let servers = try LoopbackServers()
        defer { servers.stop() }
        let card = Self.attachmentCard
        let ours = try GuestMachine(
            qemu: prerequisites.vnicQEMU, prerequisites: prerequisites,
            device: "vnic-pci,model=\(card.model),mac=\(card.mac),attach=vde:\(vdeSwitch.directory)",
            kernelArguments: "vnic.driver=e1000 vnic.steps=vde vnic.http=\(servers.httpPort)", netdev: nil)
        defer { ours.stop() }
        _ = Self.step(ours, "probe", timeout: 90)
        let lease = Self.step(ours, "dhcp", timeout: 60)
        let address = Self.value("ip", in: lease.detail) ?? ""
        #expect(address.hasPrefix("10.0.2."), "slirpvde's DHCP leased \(address)")
        _ = Self.step(ours, "ping")
        let download = Self.step(ours, "download", timeout: 120)
        #expect(Self.value("md5", in: download.detail) == servers.file10MDigest, "the 10 MB file arrived intact")

        // A stock QEMU guest on the same switch (QEMU's own -netdev vde) reaches the vnic card.
        let theirs = try GuestMachine(
            qemu: stock, prerequisites: prerequisites, device: "e1000,netdev=net0,romfile=",
            kernelArguments: "vnic.driver=e1000 vnic.steps=pinger vnic.peer=\(address)",
            netdev: "vde,id=net0,sock=\(vdeSwitch.directory)")
        defer { theirs.stop() }
        _ = Self.step(theirs, "dhcp", timeout: 90)
        _ = Self.step(theirs, "peer-ping", timeout: 60)
        theirs.stop()

        #expect(ours.next("VNIC wait switch-gone", timeout: 30) != nil)
        vdeSwitch.stop()
        _ = Self.step(ours, "carrier-down", timeout: 60)
        #expect(ours.next("VNIC wait switch-back", timeout: 30) != nil)
        try vdeSwitch.start()
        _ = Self.step(ours, "carrier-up", timeout: 60)
        _ = Self.step(ours, "ping-after-switch", timeout: 60)
        _ = Self.step(ours, "done", timeout: 30)
    }
}

extension RealGuestTests {
    @Test("VXLAN 42 to a Linux vxlan device in a namespace: ARP, ping and 10 MB over TCP from the kernel behind it")
    func vxlanToALinuxDevice() throws {
        guard let prerequisites = Self.prerequisites() else { return }
        guard geteuid() == 0 else {
            print("SKIP VXLAN guest test: needs root (ip netns, veth, vxlan)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-gvx")
        defer { namespace.remove() }
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let (outside, inside) = ("gvo\(suffix)", "gvi\(suffix)")
        let subnet = Int.random(in: 1...250)
        let (here, there) = ("10.232.\(subnet).1", "10.232.\(subnet).2")
        for command in [
            ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
            ["ip", "link", "set", inside, "netns", namespace.name],
            ["ip", "addr", "add", "\(here)/30", "dev", outside], ["ip", "link", "set", outside, "up"],
        ] {
            try #require(shell(command).status == 0, "\(command.joined(separator: " "))")
        }
        defer { shell(["ip", "link", "del", outside]) }
        for command in [
            ["ip", "addr", "add", "\(there)/30", "dev", inside], ["ip", "link", "set", inside, "up"],
            ["ip", "link", "set", "lo", "up"],
            [
                "ip", "link", "add", "vx42", "type", "vxlan", "id", "42", "local", there, "remote", here, "dstport",
                "4789", "dev", inside,
            ],
            ["ip", "addr", "add", "192.168.232.2/24", "dev", "vx42"], ["ip", "link", "set", "vx42", "up"],
            // A veth offloads checksums: the namespace's kernel would leave the inner TCP checksum for the "device"
            // to finish, and a frame that reaches a socket on this host (vnic's) never is. A wire has no such path.
            ["ethtool", "-K", inside, "tx", "off"],
        ] {
            try #require(namespace.run(command).status == 0, "\(command.joined(separator: " "))")
        }
        // The kernel behind the vxlan device serves a 10 MB file over HTTP.
        let servers = try LoopbackServers()
        defer { servers.stop() }
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            namespace.command([
                "python3", "-m", "http.server", "80", "--bind", "192.168.232.2", "--directory", servers.directory,
            ]))
        defer { _ = http.stop() }

        let card = Self.attachmentCard
        let guest = try GuestMachine(
            qemu: prerequisites.vnicQEMU, prerequisites: prerequisites,
            device: "vnic-pci,model=\(card.model),mac=\(card.mac),attach=vxlan:vni=42;remote=\(there);local=\(here)",
            kernelArguments: "vnic.driver=e1000 vnic.steps=peer vnic.ip=192.168.232.1 vnic.peer=192.168.232.2"
                + " vnic.mtu=1450",
            netdev: nil)
        defer { guest.stop() }
        _ = Self.step(guest, "probe", timeout: 90)
        _ = Self.step(guest, "peer-ping", timeout: 90)
        _ = Self.step(guest, "serve", timeout: 60)
        let download = Self.step(guest, "download", timeout: 120)
        #expect(Self.value("md5", in: download.detail) == servers.file10MDigest, "10 MB from the namespace intact")
        let neighbours = namespace.run(["ip", "neigh", "show", "192.168.232.1"]).output
        #expect(neighbours.contains(card.mac), "the namespace learned the guest's MAC by ARP: \(neighbours)")
    }
}

extension RealGuestTests {
    @Test(
        "bridged onto a veth: a lease from udhcpd in a namespace, ping, 10 MB, 9000-byte frames, the carrier followed")
    func bridgedOntoAVeth() throws {
        guard let prerequisites = Self.prerequisites() else { return }
        guard geteuid() == 0 else {
            print("SKIP bridged guest test: needs root (ip netns, veth, AF_PACKET)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-gbr")
        defer { namespace.remove() }
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let (outside, inside) = ("gbo\(suffix)", "gbi\(suffix)")
        try #require(shell(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside]).status == 0)
        defer { shell(["ip", "link", "del", outside]) }
        for command in [
            ["ip", "link", "set", inside, "netns", namespace.name], ["ip", "link", "set", outside, "mtu", "9000"],
            ["ip", "link", "set", outside, "up"],
        ] {
            try #require(shell(command).status == 0, "\(command.joined(separator: " "))")
        }
        for command in [
            ["ip", "link", "set", inside, "mtu", "9000"], ["ip", "addr", "add", "192.168.235.1/24", "dev", inside],
            ["ip", "link", "set", inside, "up"], ["ip", "link", "set", "lo", "up"],
        ] {
            try #require(namespace.run(command).status == 0, "\(command.joined(separator: " "))")
        }
        let servers = try LoopbackServers()
        defer { servers.stop() }
        let configuration = servers.directory + "/udhcpd.conf"
        try """
        start 192.168.235.100
        end 192.168.235.150
        interface \(inside)
        lease_file \(servers.directory)/udhcpd.leases
        option subnet 255.255.255.0
        option router 192.168.235.1

        """.write(toFile: configuration, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: servers.directory + "/udhcpd.leases", contents: nil)
        let dhcp = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"), namespace.command(["busybox", "udhcpd", "-f", configuration]))
        defer { _ = dhcp.stop() }
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            namespace.command([
                "python3", "-m", "http.server", "80", "--bind", "192.168.235.1", "--directory", servers.directory,
            ]))
        defer { _ = http.stop() }

        let card = Self.attachmentCard
        let guest = try GuestMachine(
            qemu: prerequisites.vnicQEMU, prerequisites: prerequisites,
            device: "vnic-pci,model=\(card.model),mac=\(card.mac),attach=bridged:\(outside)",
            kernelArguments: "vnic.driver=e1000 vnic.steps=bridged vnic.gw=192.168.235.1 vnic.http=80", netdev: nil)
        defer { guest.stop() }
        _ = Self.step(guest, "probe", timeout: 90)
        _ = Self.step(guest, "carrier")
        let lease = Self.step(guest, "dhcp")
        let address = Self.value("ip", in: lease.detail) ?? ""
        #expect(address.hasPrefix("192.168.235.1") && address != "192.168.235.1", "udhcpd leased \(address)")
        _ = Self.step(guest, "ping")
        let download = Self.step(guest, "download", timeout: 120)
        #expect(Self.value("md5", in: download.detail) == servers.file10MDigest, "the 10 MB file arrived intact")
        let jumbo = Self.step(guest, "jumbo-ping", timeout: 30)
        #expect(Self.value("reply", in: jumbo.detail) == "8980", "the 9000-byte echo came back whole")
        #expect(guest.next("VNIC wait carrier-drop", timeout: 30) != nil)
        namespace.run(["ip", "link", "set", inside, "down"])
        _ = Self.step(guest, "carrier-down", timeout: 60)
        #expect(guest.next("VNIC wait carrier-back", timeout: 30) != nil)
        namespace.run(["ip", "link", "set", inside, "up"])
        _ = Self.step(guest, "carrier-up", timeout: 60)
        _ = Self.step(guest, "ping-after-carrier", timeout: 60)
        _ = Self.step(guest, "done", timeout: 30)
    }
}

/// Debian's vde_switch with slirpvde (a DHCP server and a user-mode router to the host) in a folder of its own; both
/// stopped by their pids.
final class VDELab {
    let directory = NSTemporaryDirectory() + "vnic-guest-vde-\(UUID().uuidString.prefix(8))"
    private var vdeSwitch: ChildProcess?
    private var slirp: ChildProcess?

    /// `nil`, with a SKIP line, when vde2 is not installed.
    init?() {
        for tool in ["/usr/bin/vde_switch", "/usr/bin/slirpvde"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            print("SKIP VDE guest test: no \(tool) (apt-get install vde2)")
            return nil
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func start() throws {
        let vdeSwitch = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/vde_switch"), ["-s", directory], holdingInputOpen: true)
        self.vdeSwitch = vdeSwitch
        let deadline = Date().addingTimeInterval(5)
        // vde_switch binds its control socket a moment before it listens on it: wait until it takes a connection.
        while !acceptsConnections(path: directory + "/ctl"), Date() < deadline { usleep(20_000) }
        slirp = try ChildProcess(URL(fileURLWithPath: "/usr/bin/slirpvde"), ["-s", directory, "-dhcp"])
    }

    func stop() {
        _ = slirp?.stop()
        _ = vdeSwitch?.stop()
        slirp = nil
        vdeSwitch = nil
    }
}
