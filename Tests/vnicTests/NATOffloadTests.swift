import Foundation
import Glibc
import NICTestSupport
import Testing

@Suite("vnic nat --tap: checksum and segmentation offload", .serialized)
struct NATOffloadTests {
    /// The counter `name` from a stopped `vnic nat`'s output (0 when absent).
    static func counter(_ name: String, in output: String) -> Int {
        output.split(whereSeparator: \.isNewline).compactMap { line -> Int? in
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: "=")
            return parts.count == 2 && parts[0] == name ? Int(parts[1]) : nil
        }.first ?? 0
    }

    @Test(
        "at MTU 1500 a TAP with offloads (the default) carries uploads and downloads in 64 KiB segments; without, in MTU-sized frames; intact either way",
        arguments: [true, false])
    func segmentsBothWays(offloads: Bool) throws {
        guard let vnic = NATCommandTests.vnic() else { return }
        if let reason = NATCommandTests.missingPrerequisite {
            print("SKIP vnic nat offload test: \(reason)")
            return
        }
        let namespace = try TestNamespace(prefix: "vnic-test")
        defer { namespace.remove() }
        func inside(_ arguments: [String], timeout: Double = 30) -> (status: Int32, output: String) {
            namespace.run(arguments, timeout: timeout)
        }
        let scratch = NSTemporaryDirectory() + "vnic-offload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/www", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let blob = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try blob.write(to: URL(fileURLWithPath: scratch + "/www/blob"))
        let httpPort = freeLoopbackPort()
        let http = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-m", "http.server", "\(httpPort)", "--bind", "127.0.0.1", "--directory", scratch + "/www"])
        defer { _ = http.stop() }
        // The upload's receiver: one connection, its bytes written to a file.
        let uploadPort = freeLoopbackPort()
        let uploaded = scratch + "/uploaded"
        let receiver = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", "-c",
                "import socket, sys\n"
                    + "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                    + "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1); s.settimeout(30)\n"
                    + "c, _ = s.accept(); c.settimeout(30); f = open(sys.argv[2], 'wb')\n"
                    + "while True:\n    d = c.recv(1 << 20)\n    if not d: break\n    f.write(d)\n"
                    + "f.close(); print('received', flush=True)\n",
                "\(uploadPort)", uploaded,
            ])
        defer { _ = receiver.stop(signal: SIGKILL) }
        let nat = try ChildProcess(
            vnic,
            [
                "nat", "--tap", "tap0", "--netns", namespace.path, "--localhost-reachable", "--dns",
                "127.0.0.1",
            ]
                + (offloads ? [] : ["--no-offload"]))
        defer { _ = nat.stop(signal: SIGKILL) }
        #expect(nat.waitForOutput("SIGINT or SIGTERM stops"), "\(nat.output)")
        #expect(inside(["ip", "link", "set", "tap0", "up"]).status == 0)
        #expect(inside(["ip", "addr", "add", "10.0.2.15/24", "dev", "tap0"]).status == 0)
        var served = false
        for _ in 0..<100 where !served {
            let fd = connectSocket(port: httpPort)
            served = fd >= 0
            if fd >= 0 { close(fd) } else { usleep(50_000) }
        }
        let file = scratch + "/download"
        let download = inside(["busybox", "wget", "-q", "-O", file, "http://10.0.2.2:\(httpPort)/blob"])
        #expect(served && download.status == 0, "\(download.output)")
        #expect(FileManager.default.contents(atPath: file) == blob)
        let upload = inside([
            "python3", "-c",
            "import socket, sys\nc = socket.create_connection(('10.0.2.2', int(sys.argv[1])), timeout=30)\n"
                + "c.sendall(open(sys.argv[2], 'rb').read()); c.close()\n",
            "\(uploadPort)", scratch + "/www/blob",
        ])
        #expect(upload.status == 0, "\(upload.output)")
        #expect(receiver.waitForOutput("received", timeout: 30))
        #expect(FileManager.default.contents(atPath: uploaded) == blob)
        #expect(nat.stop(signal: SIGTERM) == 0)
        let output = nat.output
        let averageIn = Self.counter("tap_bytes_in", in: output) / max(1, Self.counter("tap_frames_in", in: output))
        let averageOut = Self.counter("tap_bytes_out", in: output) / max(1, Self.counter("tap_frames_out", in: output))
        if offloads {
            // Both ways the average frame is far above the 1514 bytes an MTU of 1500 allows on the wire.
            #expect(averageIn > 3000 && averageOut > 3000, "\(output)")
        } else {
            #expect(averageIn <= 1514 && averageOut <= 1514, "\(output)")
        }
        #expect(Self.counter("tap_drop_bad_offload_header", in: output) == 0)
    }
}
