import Foundation
import NICCore
import NICTestSupport
import NetBackend
import Testing

@Suite struct PacketCaptureTests {
    /// A timestamp source that ticks one microsecond per call from a fixed epoch.
    private func ticking(from start: UInt64) -> @Sendable () -> UInt64 {
        let next = Shared(start)
        return {
            next.withLock { value in
                defer { value += 1000 }
                return value
            }
        }
    }

    /// A port on an internal network with a peer, the port's traffic captured to a fresh file.
    private func capturedPair(
        snapshotLength: Int = 65_535
    ) throws -> (port: FramePort, peer: FramePort, capture: PacketCapture) {
        let network = InternalNetwork(name: "capture")
        let port = FramePort(), peer = FramePort()
        port.attach(network)
        peer.attach(network)
        let capture = try PacketCapture(
            path: temporaryPath("capture.pcap"), snapshotLength: snapshotLength,
            timestamp: ticking(from: 1_700_000_000_000_000_000))
        port.addTap(capture)
        return (port, peer, capture)
    }

    @Test func framesBothWaysLandInOrder() throws {
        let (port, peer, capture) = try capturedPair()
        defer { try? FileManager.default.removeItem(atPath: capture.path) }
        let sent = [
            frame(to: .broadcast, from: mac(1), tag: 1),
            frame(to: mac(1), from: mac(2), tag: 2),
            frame(to: mac(2), from: mac(1), tag: 3, length: 1514),
            frame(to: mac(1), from: mac(2), tag: 4, length: 100),
        ]
        port.send(sent[0])
        peer.send(sent[1])
        port.send(sent[2])
        peer.send(sent[3])
        peer.send(frame(to: mac(9), from: mac(2), tag: 5))
        _ = port.drain()
        capture.close()
        port.send(frame(to: .broadcast, from: mac(1), tag: 6))

        #expect(capture.capturedFrames == 5, "the unknown unicast was flooded to the port too")
        let reader = try PcapReader(path: capture.path)
        #expect(reader.linkType == 1)
        #expect(reader.records.map(\.bytes) == sent + [frame(to: mac(9), from: mac(2), tag: 5)])
        #expect(reader.records.map(\.timestampNanoseconds) == (0..<5).map { 1_700_000_000_000_000_000 + $0 * 1000 })
        #expect(peer.drain().map(tag(of:)) == [1, 3, 6], "capture does not disturb the traffic")
    }

    @Test func truncatesToTheSnapshotLength() throws {
        let (port, _, capture) = try capturedPair(snapshotLength: 96)
        defer { try? FileManager.default.removeItem(atPath: capture.path) }
        #expect(capture.snapshotLength == 96)
        let jumbo = frame(to: .broadcast, from: mac(1), length: 9000)
        port.send(jumbo)
        capture.close()
        let reader = try PcapReader(path: capture.path)
        #expect(reader.snapshotLength == 96)
        #expect(reader.records.first?.bytes == Array(jumbo[..<96]))
        #expect(reader.records.first?.originalLength == 9000)
    }

    @Test func capturesWhatACardSendsWithNothingAttached() throws {
        let port = FramePort()
        let capture = try PacketCapture(path: temporaryPath("unattached.pcap"))
        defer { try? FileManager.default.removeItem(atPath: capture.path) }
        port.addTap(capture)
        port.send(frame(to: .broadcast, from: mac(1)))
        port.removeTap(capture)
        port.send(frame(to: .broadcast, from: mac(1)))
        capture.close()
        #expect(try PcapReader(path: capture.path).records.count == 1)
        #expect(capture.counters.first { $0.name == "captured" }?.value == 1)
        capture.observe(UnsafeRawBufferPointer(start: nil, count: 0), direction: .received)
        #expect(capture.droppedAfterClose == 1)
        #expect(capture.failedWrites == 0)
    }

    @Test func timestampsNeverGoBackwards() throws {
        let steps = Shared<[UInt64]>([5_000, 9_000, 7_000, 12_000])
        let capture = try PacketCapture(path: temporaryPath("monotonic.pcap")) {
            steps.withLock { $0.removeFirst() }
        }
        defer { try? FileManager.default.removeItem(atPath: capture.path) }
        let port = FramePort()
        port.addTap(capture)
        for i in 0..<4 { port.send(frame(to: .broadcast, from: mac(1), tag: UInt32(i))) }
        capture.close()
        let stamps = try PcapReader(path: capture.path).records.map(\.timestampNanoseconds)
        #expect(stamps == [5_000, 9_000, 9_000, 12_000])
    }

    @Test func unwritablePathThrows() {
        #expect(throws: PcapError.self) { try PacketCapture(path: "/nonexistent-vnic-dir/x.pcap") }
    }

    @Test(.timeLimit(.minutes(1)))
    func tcpdumpReadsTheFile() throws {
        guard
            let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].first(where: FileManager.default.isExecutableFile)
        else {
            print("SKIP: tcpdump not installed")
            return
        }
        let (port, peer, capture) = try capturedPair()
        defer { try? FileManager.default.removeItem(atPath: capture.path) }
        port.send(frame(to: .broadcast, from: mac(1), tag: 1))
        peer.send(frame(to: mac(1), from: mac(2), tag: 2))
        port.send(frame(to: mac(2), from: mac(1), tag: 3))
        capture.close()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: tcpdump)
        process.arguments = ["-r", capture.path, "-nn", "-e", "-tt", "--time-stamp-precision=nano"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // One summary line per packet; tcpdump hex-dumps unknown EtherTypes on indented lines below it.
        let lines = text.split(whereSeparator: \.isNewline).filter { !($0.first?.isWhitespace ?? true) }
        #expect(lines.count == 3, "\(text)")
        let expected = [
            "1700000000.000000000 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff",
            "1700000000.000001000 02:00:00:00:00:02 > 02:00:00:00:00:01",
            "1700000000.000002000 02:00:00:00:00:01 > 02:00:00:00:00:02",
        ]
        for (line, prefix) in zip(lines, expected) { #expect(line.hasPrefix(prefix), "\(text)") }
    }
}
