import Foundation
import NICHarness

enum DemoCommand {
    static let help = """
        usage: vnic demo

        Drives one card of each implemented type the way its Linux driver does (probe, init,
        broadcast and unicast frames each way, cable unplugged and plugged back, stop) with every
        card on one internal network, and prints a table of what worked. Then a card on a NAT of
        its own (a PCnet-FAST III in slot 0, a PRO/1000 MT Desktop in slot 1) gets a DHCP lease and
        fetches a file from an HTTP server on 127.0.0.1 through the gateway. The Intel cards also
        exchange 9014-byte jumbo frames, which the PCnet cards drop and count. Then two cards on UDP
        tunnels to each other over 127.0.0.1, and, where Debian's vde_switch is installed (vde2), two
        cards on a VDE switch the demo starts in a temporary folder. Nothing needs root. Exit status 0
        when every step worked for every card, 1 otherwise.
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        guard arguments.isEmpty else { throw CommandLineError(message: "demo: unknown argument '\(arguments[0])'") }
        let report = Demo.run()
        print("vnic demo: \(report.cards.count) cards on internal network \"\(report.network)\"\n")
        print(report.table)
        let nat = Demo.runNAT()
        print("\nvnic demo: cards behind a NAT each, fetching a file from a server on 127.0.0.1\n")
        print(nat.table)
        let tunnel = Demo.runUDPTunnel()
        print("\nvnic demo: two cards on UDP tunnels to each other over 127.0.0.1\n")
        print(tunnel.table)
        var passed = report.passed && nat.passed && tunnel.passed
        if let vde = runVDE() { passed = passed && vde }
        print("\n" + (passed ? "every step worked" : "some steps FAILED"))
        return passed ? 0 : 1
    }

    /// Starts Debian's vde_switch in a temporary folder, runs the VDE part on it, prints its table and stops it;
    /// answers whether every step worked, or `nil`, with a line saying why, when vde_switch is not installed.
    static func runVDE() -> Bool? {
        let executable = "/usr/bin/vde_switch"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            print("\nvnic demo: no \(executable), so no VDE part (apt-get install vde2)")
            return nil
        }
        let directory = NSTemporaryDirectory() + "vnic-demo-vde-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let vdeSwitch = Process()
        vdeSwitch.executableURL = URL(fileURLWithPath: executable)
        vdeSwitch.arguments = ["-s", directory]
        let input = Pipe()  // vde_switch runs while its console input stays open
        vdeSwitch.standardInput = input
        vdeSwitch.standardOutput = FileHandle.nullDevice
        vdeSwitch.standardError = FileHandle.nullDevice
        do { try vdeSwitch.run() } catch {
            print("\nvnic demo: vde_switch did not start: \(error)")
            return false
        }
        defer { stop(vdeSwitch.processIdentifier) }
        for _ in 0..<250 where !acceptsConnections(directory + "/ctl") { usleep(20_000) }
        let report = Demo.runVDE(directory: directory)
        print("\nvnic demo: two cards on a vde_switch\n")
        print(report.table)
        return report.passed
    }

    /// Stops the child `pid` (SIGTERM, then SIGKILL after two seconds) and reaps it with `waitpid`, bounded: it does
    /// not rely on SIGCHLD, which a parent (a test thread, say) may have left blocked for vnic.
    static func stop(_ pid: Int32) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for round in 0..<400 {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno == ECHILD) { return }
            if round == 200 { kill(pid, SIGKILL) }
            usleep(10_000)
        }
    }

    /// Whether a unix stream socket at `path` accepts a connection now (vde_switch binds its control socket a moment
    /// before it listens on it).
    static func acceptsConnections(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }
}
