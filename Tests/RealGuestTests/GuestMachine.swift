import Foundation
import Glibc
import NICTestSupport
import Synchronization

/// What the real-guest tier needs on this machine, or why it cannot run.
struct GuestPrerequisites {
    /// QEMU with the vnic-pci device (Integrations/qemu/build.sh).
    var vnicQEMU: String
    /// Debian's QEMU, for QEMU's own models.
    var stockQEMU: String?
    var kernel: String
    var initramfs: String

    static let cache = ProcessInfo.processInfo.environment["VNIC_CACHE"] ?? "/var/cache/vnic"

    /// Finds everything, building the initramfs once per test run; the reason in the error says what is missing.
    static func find() -> Result<GuestPrerequisites, Missing> { shared }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    private static let shared: Result<GuestPrerequisites, Missing> = {
        let files = FileManager.default
        let qemu = ProcessInfo.processInfo.environment["VNIC_QEMU"] ?? cache + "/qemu-system-x86_64-vnic"
        guard files.isExecutableFile(atPath: qemu) else {
            return .failure(Missing(description: "no \(qemu) (run Integrations/qemu/build.sh, or Scripts/test)"))
        }
        for tool in ["/usr/bin/iperf3", "/bin/busybox", "/usr/sbin/ethtool", "/usr/bin/python3"]
        where !files.isExecutableFile(atPath: tool) {
            return .failure(Missing(description: "no \(tool) (.ci/run installs iperf3 busybox-static ethtool)"))
        }
        let initramfs = NSTemporaryDirectory() + "vnic-initramfs-\(getpid()).cpio.gz"
        let script = repositoryRoot.appendingPathComponent("Integrations/qemu/guest/make-initramfs.sh").path
        let made = try? run(URL(fileURLWithPath: script), [initramfs], timeout: 120)
        guard let made, made.status == 0, let kernel = made.output.split(separator: "\n").last.map(String.init) else {
            let reason = made?.error.split(separator: "\n").last.map(String.init) ?? "did not run"
            return .failure(Missing(description: "make-initramfs.sh failed: \(reason)"))
        }
        let stock = files.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") ? "/usr/bin/qemu-system-x86_64" : nil
        return .success(GuestPrerequisites(vnicQEMU: qemu, stockQEMU: stock, kernel: kernel, initramfs: initramfs))
    }()
}

/// A background process the test stops by its pid.
final class BackgroundProcess {
    let process = Process()

    init(_ path: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// The host side of the tier: a 10 MB file and a 16 KB file on an HTTP server on 127.0.0.1, and an iperf3 server.
final class LoopbackServers {
    let directory: String
    let httpPort: UInt16
    let iperfPort: UInt16
    let file10MDigest: String
    private var servers: [BackgroundProcess] = []

    init() throws {
        directory = NSTemporaryDirectory() + "vnic-www-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { throw GuestError("no /dev/urandom") }
        let big = random.readData(ofLength: 10 << 20)
        try random.close()
        try big.write(to: URL(fileURLWithPath: directory + "/file10m"))
        try big.prefix(16 << 10).write(to: URL(fileURLWithPath: directory + "/file16k"))
        file10MDigest = try run(URL(fileURLWithPath: "/usr/bin/md5sum"), [directory + "/file10m"]).output.prefix(32)
            .description
        httpPort = freeLoopbackPort()
        iperfPort = freeLoopbackPort()
        servers.append(
            try BackgroundProcess(
                "/usr/bin/python3",
                ["-m", "http.server", String(httpPort), "--bind", "127.0.0.1", "--directory", directory]))
        servers.append(try BackgroundProcess("/usr/bin/iperf3", ["-s", "-B", "127.0.0.1", "-p", String(iperfPort)]))
        usleep(500_000)
    }

    func stop() {
        for server in servers { server.stop() }
        servers.removeAll()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}

/// One guest under QEMU (TCG): its console lines as they arrive, and QMP for the cable.
final class GuestMachine {
    private let process = Process()
    private let lines = ConsoleLines()
    private let qmpPath: String
    private var cursor = 0
    private let reader: Thread

    /// Boots `kernel` and `initramfs` with `device` (a `-device` argument). `netdev` is QEMU's backend for it, by
    /// default QEMU's user network (slirp), whose gateway 10.0.2.2 reaches the host's loopback; `nil` leaves QEMU's
    /// network out, for a card whose `attach=` names one of vnic's.
    init(
        qemu: String, prerequisites: GuestPrerequisites, device: String, kernelArguments: String,
        netdev: String? = "user,id=net0"
    ) throws {
        qmpPath = NSTemporaryDirectory() + "vnic-qmp-\(UUID().uuidString).sock"
        process.executableURL = URL(fileURLWithPath: qemu)
        var arguments = [
            "-M", "pc", "-accel", "tcg", "-m", "256", "-smp", "1", "-display", "none", "-no-reboot",
            "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console", "-monitor", "none",
            "-qmp", "unix:\(qmpPath),server=on,wait=off",
            "-kernel", prerequisites.kernel, "-initrd", prerequisites.initramfs,
            "-append", "console=ttyS0 quiet panic=-1 " + kernelArguments,
            "-device", device,
        ]
        arguments += netdev.map { ["-netdev", $0] } ?? ["-nic", "none"]  // no default NIC of QEMU's own
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let handle = pipe.fileHandleForReading
        let sink = lines
        reader = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    sink.append(line.trimmingCharacters(in: .controlCharacters))
                }
            }
        }
        try process.run()
        reader.start()
    }

    /// Every console line so far.
    var console: [String] { lines.snapshot }

    /// Waits up to `timeout` seconds for the next line starting with `prefix` (after the last one returned).
    func next(_ prefix: String, timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let snapshot = lines.snapshot
            if let index = snapshot[cursor...].firstIndex(where: { $0.contains(prefix) }) {
                cursor = index + 1
                return String(snapshot[index][snapshot[index].range(of: prefix)!.upperBound...])
            }
            if !process.isRunning && lines.snapshot.count == snapshot.count { return nil }
            usleep(50_000)
        }
        return nil
    }

    /// Sets the NIC's link through QMP (`set_link net0`), as a user pulling the cable.
    func setLink(up: Bool) throws {
        let fd = connectSocket(path: qmpPath)
        guard fd >= 0 else { throw GuestError("QMP connect to \(qmpPath): errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func exchange(_ command: String?) throws -> String {
            if let command {
                let bytes = Array((command + "\n").utf8)
                guard write(fd, bytes, bytes.count) == bytes.count else { throw GuestError("QMP write") }
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { throw GuestError("QMP read") }
            return String(decoding: buffer[0..<count], as: UTF8.self)
        }
        _ = try exchange(nil)
        _ = try exchange(#"{"execute":"qmp_capabilities"}"#)
        let reply = try exchange(#"{"execute":"set_link","arguments":{"name":"net0","up":\#(up)}}"#)
        guard reply.contains("\"return\"") else { throw GuestError("set_link: \(reply)") }
    }

    /// Stops QEMU by its pid (SIGTERM, then SIGKILL) and waits for the console reader.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: qmpPath)
    }

    /// Waits up to `timeout` seconds for the guest to power off by itself.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        return !process.isRunning
    }

    deinit { stop() }
}

/// Console lines shared between the reader thread and the test.
final class ConsoleLines: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var snapshot: [String] { lines.withLock { $0 } }
}

struct GuestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
