import Foundation
import Glibc
import NICTestSupport
import Testing

@Suite("vnic nat", .serialized)
struct NATCommandTests {
    static func vnic() -> URL? {
        guard let url = vnicExecutable() else {
            print("SKIP: the vnic executable is not built next to the tests (run swift build first)")
            return nil
        }
        return url
    }

    /// Why the namespace test cannot run here, or `nil`.
    static var missingPrerequisite: String? {
        if geteuid() != 0 { return "needs root (ip netns, TAP)" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun" }
        if shell(["ip", "-V"]).status != 0 { return "no 'ip' (iproute2)" }
        if shell(["busybox", "true"]).status != 0 { return "no busybox" }
        if shell(["python3", "-c", "pass"]).status != 0 { return "no python3" }
        return nil
    }

    @Test("--help describes both guests; bad arguments exit 2 naming the argument")
    func helpAndBadArguments() throws {
        guard let vnic = Self.vnic() else { return }
        let help = try run(vnic, ["nat", "--help"])
        #expect(help.status == 0)
        for word in [
            "--tap", "--netns", "--stream", "--forward", "--localhost-reachable", "--tftp-root", "--cidr6", "--no-ipv6",
        ] {
            #expect(help.output.contains(word), "\(word)")
        }
        let cases: [([String], String)] = [
            ([], "--tap NAME or --stream"),
            (["--tap", "t0", "--stream", "unix:/tmp/x.sock"], "cannot be combined"),
            (["--stream", "unix:/tmp/x.sock", "--netns", "/run/netns/x"], "--netns"),
            (["--stream", "tcp:10.1.2.3:5555"], "loopback"),
            (["--stream", "udp:1"], "--stream"),
            (["--tap", "name/with/slash"], "--tap"),
            (["--tap", "t0", "--mtu", "70000"], "--mtu"),
            (["--tap", "t0", "--mtu"], "--mtu needs a value"),
            (["--tap", "t0", "--cidr", "10.0.2.0/33"], "--cidr"),
            (["--tap", "t0", "--cidr", "10.0.2.0/30"], "too small"),
            (["--tap", "t0", "--dns", "resolver"], "--dns"),
            (["--tap", "t0", "--forward", "ssh,tcp,,99999,,22"], "--forward"),
            (["--tap", "t0", "--forward", "v6,tcp,[::1],2222,10.0.2.15,22"], "differ in IP version"),
            (["--tap", "t0", "--forward", "v6,tcp,[::1],2222,,22", "--no-ipv6"], "IPv6 is off"),
            (["--tap", "t0", "--cidr6", "fd00::/48"], "--cidr6"),
            (["--tap", "t0", "--allow", "fd00::/129"], "--allow"),
            (["--tap", "t0", "--tftp-root", "/nonexistent/tftp"], "--tftp-root"),
            (["--tap", "t0", "--frobnicate"], "--frobnicate"),
        ]
        // A namespace that cannot be entered is a run-time failure (exit 1) naming the path.
        let namespace = try run(vnic, ["nat", "--tap", "t0", "--netns", "/nonexistent/netns"], timeout: 10)
        #expect(namespace.status == 1 && namespace.error.contains("/nonexistent/netns"), "\(namespace.error)")
        for (arguments, message) in cases {
            let result = try run(vnic, ["nat"] + arguments, timeout: 10)
            #expect(result.status == 2, "\(arguments): \(result.error)")
            #expect(result.error.contains(message), "\(arguments): \(result.error)")
        }
    }

    @Test(
        "--stream on a unix or TCP socket answers ARP in QEMU's framing, and SIGINT stops it cleanly with counters",
        arguments: ["unix", "tcp"])
    func streamServer(kind: String) throws {
        guard let vnic = Self.vnic() else { return }
        let path = NSTemporaryDirectory() + "vnic-nat-\(UUID().uuidString.prefix(8)).sock"
        let port = freeLoopbackPort()
        let address = kind == "unix" ? "unix:\(path)" : "tcp:127.0.0.1:\(port)"
        let child = try ChildProcess(vnic, ["nat", "--stream", address, "--restrict", "--dns", "127.0.0.1"])
        #expect(child.waitForOutput("SIGINT or SIGTERM stops"), "\(child.output)")
        #expect(child.output.contains("stream \(address)"))
        let fd = kind == "unix" ? connectSocket(path: path) : connectSocket(port: port)
        #expect(fd >= 0)
        defer { if fd >= 0 { close(fd) } }
        // ARP who-has 10.0.2.2 from 52:54:00:12:34:56 (10.0.2.15), behind its 4-byte length.
        let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        let arp: [UInt8] =
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + mac + [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1] + mac
            + [10, 0, 2, 15] + [0, 0, 0, 0, 0, 0] + [10, 0, 2, 2]
        let framed = [0, 0, 0, UInt8(arp.count)] + arp
        _ = framed.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let header = receiveBytes(fd, count: 4)
        #expect(header.count == 4)
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        let reply = receiveBytes(fd, count: length)
        #expect(reply.count >= 42 && reply.count == length)
        if reply.count >= 42 {
            #expect(Array(reply[0..<6]) == mac && reply[12] == 0x08 && reply[13] == 0x06 && reply[21] == 2)
            #expect(Array(reply[28..<32]) == [10, 0, 2, 2])
        }
        #expect(child.stop(signal: SIGINT) == 0)
        let output = child.output
        #expect(output.contains("stopped by SIGINT"), "\(output)")
        #expect(output.contains("stream_frames_in=1") && output.contains("arp_replies=1"), "\(output)")
        #expect(access(path, F_OK) != 0, "the socket file is removed")
    }

    @Test(
        "a namespace via --tap: lease, ping, DNS, HTTP, 20 downloads and 1000 connections at once, TCP and UDP forwards"
    )
    func namespaceGuest() throws {
        guard let vnic = Self.vnic() else { return }
        if let reason = Self.missingPrerequisite {
            print("SKIP vnic nat namespace test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }
        let scratch = NSTemporaryDirectory() + "vnic-nat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/www", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        // A file on a host-loopback web server.
        let blob = Data((0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try blob.write(to: URL(fileURLWithPath: scratch + "/www/blob"))
        let httpPort = freeLoopbackPort()
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-m", "http.server", "\(httpPort)", "--bind", "127.0.0.1", "--directory", scratch + "/www"])
        defer { _ = http.stop() }

        // A DNS resolver on host loopback that answers every A query with 192.0.2.7.
        let dnsPort = freeLoopbackPort()
        let resolver = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", Self.resolverScript, "\(dnsPort)"])
        defer { _ = resolver.stop(signal: SIGKILL) }
        #expect(resolver.waitForOutput("ready"), "\(resolver.output)")

        let forwardPort = freeLoopbackPort()
        let udpForwardPort = freeLoopbackPort()
        let nat = try ChildProcess(
            vnic,
            [
                "nat", "--tap", "tap0", "--netns", namespace.path, "--localhost-reachable",
                "--forward", "echo,tcp,127.0.0.1,\(forwardPort),,8080",
                "--forward", "echo-udp,udp,127.0.0.1,\(udpForwardPort),,8081", "--dns", "127.0.0.1:\(dnsPort)",
            ])
        defer { _ = nat.stop(signal: SIGKILL) }
        #expect(nat.waitForOutput("SIGINT or SIGTERM stops"), "\(nat.output)")
        #expect(inside(["ip", "link", "show", "tap0"]).output.contains("state DOWN"))

        // DHCP.
        let script = scratch + "/udhcpc.sh"
        try """
        #!/bin/sh
        if [ "$1" = bound ]; then
            ip addr add "$ip/$mask" dev "$interface"
            ip route add default via "$router" dev "$interface"
        fi
        exit 0
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        #expect(inside(["ip", "link", "set", "lo", "up"]).status == 0)
        #expect(inside(["ip", "link", "set", "tap0", "up"]).status == 0)
        let lease = inside(["busybox", "udhcpc", "-i", "tap0", "-n", "-q", "-t", "5", "-s", script], timeout: 20)
        #expect(lease.status == 0, "\(lease.output)")
        #expect(inside(["ip", "-4", "addr", "show", "tap0"]).output.contains("inet 10.0.2.15/24"))
        #expect(inside(["ip", "route"]).output.contains("default via 10.0.2.2"))

        // The gateway answers pings.
        let ping = inside(unmasked(["busybox", "ping", "-c", "2", "-W", "3", "10.0.2.2"]), timeout: 8)
        #expect(ping.status == 0 && ping.output.contains("2 packets received"), "\(ping.output)")

        // HTTP from host loopback through the gateway (localhost-reachable).
        var served = false
        for _ in 0..<100 where !served {
            let fd = connectSocket(port: httpPort)
            served = fd >= 0
            if fd >= 0 { close(fd) } else { usleep(50_000) }
        }
        #expect(served, "the web server did not start: \(http.output)")
        let file = scratch + "/download"
        let download = inside(
            ["busybox", "wget", "-q", "-O", file, "http://10.0.2.2:\(httpPort)/blob"], timeout: 30)
        #expect(download.status == 0, "\(download.output)")
        #expect(FileManager.default.contents(atPath: file) == blob)

        // 20 downloads at once.
        let many = inside(
            unmasked([
                "sh", "-c",
                """
                pids=""; for i in $(seq 20); do busybox wget -q -O \(scratch)/many.$i \
                http://10.0.2.2:\(httpPort)/blob & pids="$pids $!"; done
                failed=0; for p in $pids; do wait $p || failed=$((failed+1)); done; echo failed=$failed
                """,
            ]), timeout: 60)
        #expect(many.output.contains("failed=0"), "\(many.output)")
        for index in 1...20 {
            #expect(FileManager.default.contents(atPath: scratch + "/many.\(index)") == blob, "download \(index)")
        }

        // 1000 connections at once through the NAT to a loopback server, and no descriptor left behind after.
        let manyPort = freeLoopbackPort()
        let manyServer = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", Self.okServerScript, "\(manyPort)"])
        defer { _ = manyServer.stop(signal: SIGKILL) }
        #expect(manyServer.waitForOutput("ready"), "\(manyServer.output)")
        let descriptors = "/proc/\(nat.process.processIdentifier)/fd"
        let before = (try? FileManager.default.contentsOfDirectory(atPath: descriptors).count) ?? -1
        let connections = inside(["python3", "-c", Self.manyClientsScript, "\(manyPort)", "1000"], timeout: 90)
        #expect(connections.output.contains("ok=1000"), "\(connections.output)")
        var after = Int.max
        for _ in 0..<150 where after > before {
            after = (try? FileManager.default.contentsOfDirectory(atPath: descriptors).count) ?? -1
            if after > before { usleep(100_000) }
        }
        #expect(before > 0 && after <= before, "descriptors before \(before), after \(after)")

        // A port forward from host 127.0.0.1 into the namespace: a one-shot echo server there answers in upper case.
        let echo = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "ip", "netns", "exec", namespace.name, "python3", "-c",
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                    + "s.bind(('0.0.0.0',8080))\ns.listen(1)\ns.settimeout(20)\nprint('listening',flush=True)\n"
                    + "c,_=s.accept()\nc.settimeout(10)\nc.sendall(c.recv(100).upper())\nc.close()",
            ])
        defer { _ = echo.stop(signal: SIGKILL) }
        #expect(echo.waitForOutput("listening"), "\(echo.output)")
        let client = connectSocket(port: forwardPort)
        #expect(client >= 0)
        if client >= 0 {
            let message = Array("through the forward".utf8)
            _ = message.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let answer = receiveBytes(client, count: message.count, timeout: 10)
            #expect(String(decoding: answer, as: UTF8.self) == "THROUGH THE FORWARD")
            close(client)
        }

        // A UDP port forward: a one-shot echo server in the namespace answers in upper case.
        let udpEcho = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "ip", "netns", "exec", namespace.name, "python3", "-c",
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',8081))\n"
                    + "s.settimeout(20)\nprint('listening',flush=True)\nd,a=s.recvfrom(100)\ns.sendto(d.upper(),a)",
            ])
        defer { _ = udpEcho.stop(signal: SIGKILL) }
        #expect(udpEcho.waitForOutput("listening"), "\(udpEcho.output)")
        #expect(Self.udpExchange(port: udpForwardPort, "udp through the forward") == "UDP THROUGH THE FORWARD")

        // DNS through the proxy at 10.0.2.3 to the resolver on host loopback.
        let lookup = inside(["busybox", "nslookup", "vnic.test", "10.0.2.3"], timeout: 10)
        #expect(lookup.output.contains("192.0.2.7"), "\(lookup.output)")

        // SIGTERM stops it cleanly, with its counters.
        #expect(nat.stop(signal: SIGTERM) == 0)
        let output = nat.output
        #expect(output.contains("stopped by SIGTERM"), "\(output)")
        for counter in ["tap_frames_in=", "tap_frames_out=", "dhcp_acks=1", "tcp_connects="] {
            #expect(output.contains(counter), "\(counter): \(output)")
        }
        print("vnic nat namespace test output:\n\(output)")
    }

    @Test("--mtu 65520: a TAP with a 65520-byte MTU carries a download in frames far above 1500 bytes")
    func jumboFrames() throws {
        guard let vnic = Self.vnic() else { return }
        if let reason = Self.missingPrerequisite {
            print("SKIP vnic nat jumbo test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }
        let scratch = NSTemporaryDirectory() + "vnic-nat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/www", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let blob = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 10) })
        try blob.write(to: URL(fileURLWithPath: scratch + "/www/blob"))
        let httpPort = freeLoopbackPort()
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-m", "http.server", "\(httpPort)", "--bind", "127.0.0.1", "--directory", scratch + "/www"])
        defer { _ = http.stop() }
        let nat = try ChildProcess(
            vnic,
            [
                "nat", "--tap", "tap0", "--netns", namespace.path, "--localhost-reachable", "--mtu", "65520",
                "--dns", "127.0.0.1",
            ])
        defer { _ = nat.stop(signal: SIGKILL) }
        #expect(nat.waitForOutput("SIGINT or SIGTERM stops"), "\(nat.output)")
        #expect(inside(["ip", "link", "set", "tap0", "mtu", "65520", "up"]).status == 0)
        #expect(inside(["ip", "addr", "add", "10.0.2.15/24", "dev", "tap0"]).status == 0)
        var served = false
        for _ in 0..<100 where !served {
            let fd = connectSocket(port: httpPort)
            served = fd >= 0
            if fd >= 0 { close(fd) } else { usleep(50_000) }
        }
        let file = scratch + "/download"
        let download = inside(["busybox", "wget", "-q", "-O", file, "http://10.0.2.2:\(httpPort)/blob"], timeout: 30)
        #expect(served && download.status == 0, "\(download.output)")
        #expect(FileManager.default.contents(atPath: file) == blob)
        #expect(nat.stop(signal: SIGTERM) == 0)
        func counter(_ name: String) -> Int {
            nat.output.split(whereSeparator: \.isNewline).compactMap { line -> Int? in
                let parts = line.trimmingCharacters(in: .whitespaces).split(separator: "=")
                return parts.count == 2 && parts[0] == name ? Int(parts[1]) : nil
            }.first ?? 0
        }
        let frames = counter("tap_frames_out")
        let bytes = counter("tap_bytes_out")
        #expect(frames > 0 && bytes / max(frames, 1) > 9000, "\(frames) frames, \(bytes) bytes")
    }

    @Test("a stock QEMU guest (its own e1000) on 'vnic nat --stream' gets a lease, pings and downloads 10 MB")
    func qemuGuestOverStream() throws {
        guard let vnic = Self.vnic() else { return }
        let makeInitramfs = repositoryRoot.appendingPathComponent("Integrations/qemu/guest/make-initramfs.sh").path
        let missing: String? =
            if access(makeInitramfs, X_OK) != 0 && access(makeInitramfs, R_OK) != 0 {
                "no \(makeInitramfs) (the real-guest tier's initramfs)"
            } else if shell(["qemu-system-x86_64", "--version"]).status != 0 {
                "no qemu-system-x86_64"
            } else if shell(["python3", "-c", "pass"]).status != 0 {
                "no python3"
            } else {
                nil
            }
        if let missing {
            print("SKIP QEMU stream guest test: \(missing)")
            return
        }
        let scratch = NSTemporaryDirectory() + "vnic-nat-qemu-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/www", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let initramfs = scratch + "/initramfs.cpio.gz"
        let made = shell(["bash", makeInitramfs, initramfs], timeout: 120)
        guard made.status == 0, let kernel = made.output.split(whereSeparator: \.isNewline).last.map(String.init) else {
            print("SKIP QEMU stream guest test: the initramfs was not built: \(made.output)")
            return
        }
        let www = scratch + "/www"
        let files = shell(
            [
                "sh", "-c",
                "head -c 10485760 /dev/urandom > \(www)/file10m && head -c 16384 \(www)/file10m > \(www)/file16k",
            ])
        #expect(files.status == 0, "\(files.output)")
        let md5 = shell(["md5sum", scratch + "/www/file10m"]).output.prefix(32)

        let httpPort = freeLoopbackPort()
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-m", "http.server", "\(httpPort)", "--bind", "127.0.0.1", "--directory", scratch + "/www"])
        defer { _ = http.stop() }
        let socketPath = scratch + "/n0.sock"
        let nat = try ChildProcess(vnic, ["nat", "--stream", "unix:\(socketPath)", "--localhost-reachable"])
        defer { _ = nat.stop(signal: SIGKILL) }
        #expect(nat.waitForOutput("SIGINT or SIGTERM stops"), "\(nat.output)")

        let qemu = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
                "-kernel", kernel, "-initrd", initramfs, "-append",
                "console=ttyS0 quiet panic=-1 vnic.driver=e1000 vnic.http=\(httpPort) vnic.steps=full",
                "-device", "e1000,netdev=n0,mac=52:54:00:12:34:56",
                "-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path=\(socketPath)",
            ])
        defer { _ = qemu.stop(signal: SIGKILL) }
        // The guest reports each step on its console; after the download it waits for a cable unplug.
        let finished =
            qemu.waitForOutput("VNIC wait unplug", timeout: 120) || qemu.waitForOutput("VNIC done", timeout: 1)
        let console = qemu.output.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("VNIC ") }.joined(
            separator: "\n")
        #expect(finished, "\(console)")
        #expect(console.contains("VNIC dhcp ok ip=10.0.2.15"), "\(console)")
        #expect(console.contains("VNIC ping ok"), "\(console)")
        #expect(console.contains("VNIC download ok md5=\(md5)"), "\(console)")
        _ = qemu.stop(signal: SIGKILL)
        #expect(nat.stop(signal: SIGTERM) == 0)
        #expect(nat.output.contains("stream_connections=1") && nat.output.contains("dhcp_acks=1"), "\(nat.output)")
        print("vnic nat --stream with QEMU:\n\(console)\n\(nat.output)")
    }

    /// A TCP server for `python3 -c SCRIPT PORT` on 127.0.0.1 that answers each line with `ok`, backlog 1024.
    static let okServerScript = """
        import asyncio, sys
        async def answer(reader, writer):
            await reader.readline()
            writer.write(b'ok\\n')
            await writer.drain()
            writer.close()
        async def main():
            await asyncio.start_server(answer, '127.0.0.1', int(sys.argv[1]), backlog=1024)
            print('ready', flush=True)
            await asyncio.sleep(120)
        asyncio.run(main())
        """

    /// `python3 -c SCRIPT PORT COUNT`: COUNT connections at once to 10.0.2.2:PORT, each says a line and expects `ok`.
    static let manyClientsScript = """
        import asyncio, sys
        async def one():
            reader, writer = await asyncio.wait_for(asyncio.open_connection('10.0.2.2', int(sys.argv[1])), 30)
            writer.write(b'hi\\n')
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            writer.close()
            return line == b'ok\\n'
        async def main():
            results = await asyncio.gather(*[one() for _ in range(int(sys.argv[2]))], return_exceptions=True)
            print('ok=%d' % sum(1 for r in results if r is True), flush=True)
            print(set(repr(r) for r in results if r is not True), flush=True)
        asyncio.run(main())
        """

    /// A DNS responder for `python3 -c SCRIPT PORT`: every A query is answered with 192.0.2.7, others with no data.
    static let resolverScript = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('127.0.0.1', int(sys.argv[1])))
        print('ready', flush=True)
        for _ in range(100):
            q, a = s.recvfrom(512)
            end = 12
            while end < len(q) and q[end] != 0:
                end += q[end] + 1
            question = q[12:end + 5]
            if q[end + 1:end + 3] == b'\\x00\\x01':
                answer = b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04' + bytes([192, 0, 2, 7])
                s.sendto(q[:2] + b'\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00' + question + answer, a)
            else:
                s.sendto(q[:2] + b'\\x81\\x80\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00' + question, a)
        """

    /// Sends `text` in one datagram to 127.0.0.1:`port` and returns the answer (empty after 5 s without one).
    static func udpExchange(port: UInt16, _ text: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let message = Array(text.utf8)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                message.withUnsafeBytes {
                    sendto(fd, $0.baseAddress, $0.count, 0, target, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == message.count else { return "" }
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, 5_000) == 1 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 512)
        let got = recv(fd, &buffer, buffer.count, 0)
        return got > 0 ? String(decoding: buffer[0..<got], as: UTF8.self) : ""
    }
}
