import Foundation
import Glibc
import NICCore
import NICTestSupport
import Synchronization
import Testing

@testable import NetBackend

/// A one-shot HTTP server on 127.0.0.1 (or `[::1]`) that answers every request with `body`, on a bounded thread.
final class LoopbackHTTPServer: @unchecked Sendable {
    private let running = Atomic<Bool>(true)
    let port: UInt16
    private let listener: AnyObject

    /// `nil` only for `ipv6` on a host without IPv6 loopback.
    init?(body: [UInt8], ipv6: Bool = false) {
        let accept: @Sendable (Double) -> Int32
        if ipv6 {
            guard let socket6 = LoopbackSocket6(tcp: true) else { return nil }
            listener = socket6
            port = socket6.port
            accept = { socket6.accept(timeout: $0) }
        } else {
            let socket4 = LoopbackTCPListener()
            listener = socket4
            port = socket4.port
            accept = { socket4.accept(timeout: $0) }
        }
        let thread = Thread { [self] in
            for _ in 0..<20 where running.load(ordering: .acquiring) {
                let client = accept(0.5)
                guard client >= 0 else { continue }
                // Read the whole request: closing with unread bytes would reset the connection.
                var request: [UInt8] = []
                for _ in 0..<100 where !request.suffix(4).elementsEqual([13, 10, 13, 10]) {
                    let got = receiveBytes(client, count: 1, timeout: 2)
                    if got.isEmpty { break }
                    request += got
                }
                let header = Array("HTTP/1.0 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
                var sent = 0
                let all = header + body
                while sent < all.count {
                    let result = all.withUnsafeBytes {
                        Glibc.send(client, $0.baseAddress! + sent, all.count - sent, Int32(MSG_NOSIGNAL))
                    }
                    if result <= 0 { break }
                    sent += result
                }
                Glibc.shutdown(client, Int32(SHUT_WR))
                _ = receiveBytes(client, count: 1, timeout: 2)
                close(client)
            }
        }
        thread.start()
    }

    func stop() { running.store(false, ordering: .releasing) }
}

@Suite("NAT with the Linux stack in a network namespace", .serialized)
struct NATNamespaceTests {
    /// Why the namespace test cannot run here, or `nil`.
    static var missingPrerequisite: String? {
        if geteuid() != 0 { return "needs root (ip netns, TAP)" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun" }
        if shell(["ip", "-V"]).status != 0 { return "no 'ip' (iproute2)" }
        if shell(["busybox", "true"]).status != 0 { return "no busybox" }
        return nil
    }

    @Test("udhcpc gets a lease, ping reaches the gateway, wget downloads from host loopback, a port forward reaches in")
    func linuxGuest() throws {
        if let reason = Self.missingPrerequisite {
            print("SKIP NAT namespace test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-nat-test")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }

        let blob = (0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        let http = try #require(LoopbackHTTPServer(body: blob))
        defer { http.stop() }
        let forwardPort = NATPortForwardTests.freePort()
        var configuration = loopbackNATConfiguration()
        configuration.portForwards = [
            PortForwardRule(
                name: "nc", transport: .tcp, hostAddress: .loopback, hostPort: forwardPort, guestPort: 8022)
        ]
        let nat = try NATAttachment(configuration: configuration)
        defer { nat.close() }
        let device = try TapDevice(name: "vnictap0", networkNamespace: namespace.path)
        #expect(device.name == "vnictap0")
        let tap = try TapLink(device: device, attachment: nat)
        defer { tap.close() }
        #expect(inside(["ip", "link", "set", "lo", "up"]).status == 0)
        #expect(inside(["ip", "link", "set", "vnictap0", "up"]).status == 0)

        let script = temporaryPath("udhcpc.sh")
        try """
        #!/bin/sh
        if [ "$1" = bound ]; then
            ip addr add "$ip/$mask" dev "$interface"
            ip route add default via "$router" dev "$interface"
        fi
        exit 0
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        defer { unlink(script) }
        let lease = inside(["busybox", "udhcpc", "-i", "vnictap0", "-n", "-q", "-t", "5", "-s", script])
        #expect(lease.status == 0, "\(lease.output)")
        #expect(inside(["ip", "-4", "addr", "show", "vnictap0"]).output.contains("inet 10.0.2.15/24"))

        // One echo: busybox ping times later ones with SIGALRM, which a child of a test thread may inherit blocked.
        let ping = inside(["busybox", "ping", "-c", "1", "-W", "3", "10.0.2.2"], timeout: 6)
        #expect(ping.status == 0, "\(ping.output)")

        let file = temporaryPath("download")
        defer { unlink(file) }
        let download = inside(
            ["busybox", "wget", "-q", "-O", file, "http://10.0.2.2:\(http.port)/blob"], timeout: 30)
        #expect(download.status == 0, "\(download.output)")
        let fetched = FileManager.default.contents(atPath: file).map { [UInt8]($0) } ?? []
        #expect(fetched.count == blob.count && fetched == blob)

        // A port forward from host loopback into the namespace: nc listens inside, the host connects.
        let listenerProcess = Process()
        listenerProcess.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listenerProcess.arguments = ["ip", "netns", "exec", namespace.name, "busybox", "nc", "-l", "-p", "8022"]
        let output = Pipe()
        listenerProcess.standardOutput = output
        try listenerProcess.run()
        defer {
            if listenerProcess.isRunning { kill(listenerProcess.processIdentifier, SIGKILL) }
            listenerProcess.waitUntilExit()
        }
        usleep(300_000)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(HostSocket.connect(client, to: IPv4Endpoint(.loopback, forwardPort)) == 0)
        let message = Array("through the forward\n".utf8)
        _ = message.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(300_000)
        close(client)
        for _ in 0..<300 where listenerProcess.isRunning { usleep(10_000) }
        if listenerProcess.isRunning { kill(listenerProcess.processIdentifier, SIGKILL) }
        let received = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(received.contains("through the forward"))
        print("NAT namespace test counters: \((tap.counters + nat.counters).filter { $0.value != 0 })")
    }
}

@Suite("NAT IPv6 with the Linux stack in a network namespace", .serialized)
struct NATNamespaceIPv6Tests {
    @Test(
        "the namespace configures an address by SLAAC from the router advertisement and downloads over IPv6 from host ::1"
    )
    func slaacAndTCP() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP NAT IPv6 namespace test: \(reason)")
            return
        }
        let blob = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        guard let http = LoopbackHTTPServer(body: blob, ipv6: true) else {
            print("SKIP NAT IPv6 namespace test: the host has no IPv6 loopback")
            return
        }
        defer { http.stop() }
        let namespace = try TestNamespace(prefix: "vnic-nat6-test")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }
        let nat = try NATAttachment(configuration: loopbackNATConfiguration())
        defer { nat.close() }
        let device = try TapDevice(name: "vnictap6", networkNamespace: namespace.path)
        let tap = try TapLink(device: device, attachment: nat)
        defer { tap.close() }
        // Accept router advertisements (the namespace does not forward anyway) and skip the DAD delay.
        let sysctls = inside([
            "sh", "-c",
            "echo 0 > /proc/sys/net/ipv6/conf/vnictap6/disable_ipv6; echo 2 > /proc/sys/net/ipv6/conf/vnictap6/accept_ra;"
                + " echo 0 > /proc/sys/net/ipv6/conf/vnictap6/accept_dad",
        ])
        #expect(sysctls.status == 0, "\(sysctls.output)")
        #expect(inside(["ip", "link", "set", "lo", "up"]).status == 0)
        #expect(inside(["ip", "link", "set", "vnictap6", "up"]).status == 0)

        // The kernel solicits a router when the link comes up; wait (bounded) for the SLAAC address.
        var addresses = ""
        for _ in 0..<100 {
            addresses = inside(["ip", "-6", "addr", "show", "dev", "vnictap6", "scope", "global"]).output
            if addresses.contains("inet6 fd17:625c:f037:2:") { break }
            usleep(100_000)
        }
        #expect(addresses.contains("inet6 fd17:625c:f037:2:"), "\(addresses)")
        let routes = inside(["ip", "-6", "route", "show"]).output
        #expect(routes.contains("default via fe80::"), "\(routes)")
        print("NAT IPv6 namespace addresses: \(addresses)")

        let ping = inside(["busybox", "ping", "-6", "-c", "1", "-W", "3", "fd17:625c:f037:2::2"], timeout: 6)
        #expect(ping.status == 0, "\(ping.output)")
        let file = temporaryPath("download6")
        defer { unlink(file) }
        let url = "http://[fd17:625c:f037:2::2]:\(http.port)/blob"
        let download = inside(["busybox", "wget", "-q", "-O", file, url], timeout: 30)
        #expect(download.status == 0, "\(download.output)")
        let fetched = FileManager.default.contents(atPath: file).map { [UInt8]($0) } ?? []
        #expect(fetched.count == blob.count && fetched == blob)
        #expect(nat.counter("ndp_router_advertisements") >= 1 && nat.counter("tcp_connects") >= 1)
        print("NAT IPv6 namespace test counters: \((tap.counters + nat.counters).filter { $0.value != 0 })")
    }
}

@Suite("NAT ping sockets in a network namespace", .serialized)
struct NATPingSocketTests {
    @Test("echo to an allowed destination goes out through an unprivileged ping socket and the reply comes back")
    func echoThroughPingSocket() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP ping socket test: \(reason)")
            return
        }
        // ping_group_range is per namespace: allow ping sockets in a namespace of our own, not on the host.
        let namespace = try TestNamespace(prefix: "vnic-nat-ping")
        defer { namespace.remove() }
        #expect(shell(["ip", "-n", namespace.name, "link", "set", "lo", "up"]).status == 0)
        let allow = shell([
            "ip", "netns", "exec", namespace.name, "sh", "-c",
            "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
        ])
        #expect(allow.status == 0, "\(allow.output)")

        var configuration = loopbackNATConfiguration()
        configuration.allowedDestinations = [IPv4Network("127.0.0.1/32")!]
        let bench = try NATBench(configuration)
        // The card's thread makes the ping socket: run it inside the namespace, on a thread of its own.
        let done = Shared<String?>(nil)
        let card = Thread {
            do {
                try NetworkNamespace.perform(in: namespace.path) {
                    bench.sendIP(
                        guestPacket(to: .loopback, proto: 1, payload: echoRequest(identifier: 0x4242, sequence: 9)))
                }
                done.withLock { $0 = "sent" }
            } catch {
                done.withLock { $0 = "\(error)" }
            }
        }
        card.start()
        for _ in 0..<300 where done.value == nil { usleep(10_000) }
        #expect(done.value == "sent")
        let reply = try #require(bench.receivePackets { $0.proto == 1 }.first)
        #expect(reply.source == .loopback && reply.destination == natGuestIP)
        #expect(
            reply.payload[0] == 0 && reply.payload.bigEndian16(at: 4) == 0x4242 && reply.payload.bigEndian16(at: 6) == 9
        )
        #expect(InternetChecksum.of(reply.payload) == 0)
        #expect(Array(reply.payload[8...]) == Array("vnic ping".utf8))
        #expect(bench.counter("icmp_echo_forwarded") == 1 && bench.counter("icmp_echo_replies") == 1)
    }

    @Test("an ICMPv6 echo to an allowed destination goes out through an ICMPv6 ping socket and the reply comes back")
    func echo6ThroughPingSocket() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP ICMPv6 ping socket test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-nat-ping6")
        defer { namespace.remove() }
        #expect(shell(["ip", "-n", namespace.name, "link", "set", "lo", "up"]).status == 0)
        let allow = shell([
            "ip", "netns", "exec", namespace.name, "sh", "-c",
            "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
        ])
        #expect(allow.status == 0, "\(allow.output)")
        var configuration = loopbackNATConfiguration()
        configuration.allowedDestinations6 = [IPv6Network("::1/128")!]
        let bench = try NATBench(configuration)
        let done = Shared<String?>(nil)
        let card = Thread {
            do {
                try NetworkNamespace.perform(in: namespace.path) {
                    bench.sendIP6(
                        guestICMPv6(to: .loopback, echoRequest6(identifier: 0x6666, sequence: 2), hopLimit: 64))
                }
                done.withLock { $0 = "sent" }
            } catch {
                done.withLock { $0 = "\(error)" }
            }
        }
        card.start()
        for _ in 0..<300 where done.value == nil { usleep(10_000) }
        #expect(done.value == "sent")
        let reply = try #require(bench.receiveICMPv6(type: 129).first?.packet)
        #expect(reply.source == .loopback && reply.destination == natGuestIP6)
        #expect(reply.payload.bigEndian16(at: 4) == 0x6666 && reply.payload.bigEndian16(at: 6) == 2)
        #expect(Array(reply.payload[8...]) == Array("vnic ping6".utf8))
        #expect(bench.counter("icmp_echo_forwarded") == 1 && bench.counter("icmp_echo_replies") == 1)
    }
}
