import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("Host links: TAP devices and network namespaces", .serialized)
struct HostLinkTapTests {
    /// The network namespace the calling thread is in, as the kernel names it (`net:[4026531840]`).
    static func currentNamespace() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self/ns/net", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    @Test("names that cannot name an interface are refused before anything is opened")
    func badNames() {
        for name in ["", "sixteen-bytes-xx", "a/b", "a b", "tab\t"] {
            #expect(throws: HostLinkError.self, "\(name)") { _ = try TapDevice(name: name) }
        }
    }

    @Test("a namespace path that is missing or not a network namespace is an error naming it; the thread stays home")
    func badNamespaces() throws {
        let home = Self.currentNamespace()
        do {
            _ = try TapDevice(name: "vnicq0", networkNamespace: "/nonexistent/netns")
            Issue.record("a TAP in a missing namespace was created")
        } catch {
            #expect(error.description.contains("/nonexistent/netns"))
        }
        do {
            _ = try TapDevice(name: "vnicq0", networkNamespace: "/etc/hostname")
            Issue.record("a regular file was entered as a namespace")
        } catch {
            #expect(error.description.contains("/etc/hostname"))
        }
        #expect(Self.currentNamespace() == home)
    }

    @Test("an error thrown inside a namespace still brings the thread home")
    func throwInsideNamespace() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP namespace entry test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test-hl")
        defer { namespace.remove() }
        let home = Self.currentNamespace()
        var inside = ""
        #expect(throws: HostLinkError.invalid("planned")) {
            try NetworkNamespace.perform(in: namespace.path) { () throws(HostLinkError) in
                inside = Self.currentNamespace()
                throw .invalid("planned")
            }
        }
        #expect(!inside.isEmpty && inside != home)
        #expect(Self.currentNamespace() == home)
    }

    @Test("a namespace named by a process's /proc/PID/ns/net is entered too")
    func namespaceOfAProcess() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP /proc/PID/ns/net test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test-hl")
        defer { namespace.remove() }
        // `ip netns exec` execs the command, so the child's pid is the sleeper's, inside the namespace.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sleeper.arguments = ["ip", "netns", "exec", namespace.name, "sleep", "20"]
        try sleeper.run()
        defer {
            kill(sleeper.processIdentifier, SIGKILL)
            sleeper.waitUntilExit()
        }
        let path = "/proc/\(sleeper.processIdentifier)/ns/net"
        let target = namespace.path
        var entered = false
        for _ in 0..<200 where !entered {
            var own = stat()
            var wanted = stat()
            entered = stat(path, &own) == 0 && stat(target, &wanted) == 0 && own.st_ino == wanted.st_ino
            if !entered { usleep(10_000) }
        }
        #expect(entered)
        let device = try TapDevice(name: "vnicq1", networkNamespace: path)
        defer { device.close() }
        #expect(shell(["ip", "-n", namespace.name, "link", "show", "vnicq1"]).status == 0)
        #expect(shell(["ip", "link", "show", "vnicq1"]).status != 0)
    }

    @Test("a TAP made in a namespace lives there, down; a TapLink carries the namespace's pings to the NAT gateway")
    func tapInNamespace() throws {
        if let reason = NATNamespaceTests.missingPrerequisite {
            print("SKIP TAP link test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test-hl")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 10) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }

        let device = try TapDevice(name: "vnicq0", networkNamespace: namespace.path)
        #expect(device.name == "vnicq0")
        let shown = inside(["ip", "link", "show", "vnicq0"])
        #expect(shown.status == 0 && shown.output.contains("state DOWN"), "\(shown.output)")
        #expect(shell(["ip", "link", "show", "vnicq0"]).status != 0)

        let nat = try NATAttachment(configuration: loopbackNATConfiguration())
        defer { nat.close() }
        let link = try TapLink(device: device, attachment: nat)
        #expect(inside(["ip", "link", "set", "vnicq0", "up"]).status == 0)
        #expect(inside(["ip", "addr", "add", "10.0.2.15/24", "dev", "vnicq0"]).status == 0)
        let ping = inside(["busybox", "ping", "-c", "1", "-W", "3", "10.0.2.2"], timeout: 6)
        #expect(ping.status == 0, "\(ping.output)")
        let counters = Dictionary(uniqueKeysWithValues: link.counters.map { ($0.name, $0.value) })
        #expect((counters["tap_frames_in"] ?? 0) >= 2 && (counters["tap_frames_out"] ?? 0) >= 2, "\(counters)")
        #expect(nat.counter("arp_replies") >= 1)
        // A frame larger than any TAP carries is dropped and counted, not written.
        link.port.deliver([UInt8](repeating: 0xEE, count: TapDevice.maximumFrameLength + 1))
        for _ in 0..<300 where link.counters.first(where: { $0.name == "tap_drop_oversize_out" })?.value == 0 {
            usleep(10_000)
        }
        #expect(link.counters.first { $0.name == "tap_drop_oversize_out" }?.value == 1)
        link.close()
        link.close()
        // Closing the descriptor removes the interface.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = inside(["ip", "link", "show", "vnicq0"]).status != 0
            if !gone { usleep(10_000) }
        }
        #expect(gone)
    }
}
