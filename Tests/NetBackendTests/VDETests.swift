import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

/// Debian's `vde_switch` in a folder of its own, stopped by its pid.
final class VDESwitch {
    static let executable = "/usr/bin/vde_switch"
    let directory: String
    private var child: ChildProcess?

    /// A folder for a switch (not started); `nil` with a SKIP line when vde2 is not installed.
    init?(directory: String = NSTemporaryDirectory() + "vnic-vde-\(UUID().uuidString.prefix(8))") {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            print("SKIP VDE tests: no \(Self.executable) (apt-get install vde2)")
            return nil
        }
        self.directory = directory
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts the switch and waits (bounded) for its control socket.
    func start() throws {
        let child = try ChildProcess(
            URL(fileURLWithPath: Self.executable), ["-s", directory], holdingInputOpen: true)
        self.child = child
        let control = directory + "/ctl"
        // vde_switch binds its control socket a moment before it listens on it: wait until it takes a connection.
        guard eventually(timeout: 5, { acceptsConnections(path: control) }) else {
            throw HostLinkError.invalid("vde_switch did not start: \(child.output)")
        }
    }

    func stop() {
        _ = child?.stop()
        child = nil
    }
}

/// The unix sockets bound below `directory`, from /proc/net/unix.
func unixSockets(under directory: String) -> [String] {
    let text = (try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line in
        line.split(separator: " ").last.map(String.init).flatMap { $0.hasPrefix(directory + "/") ? $0 : nil }
    }
}

/// A control socket that answers a VDE request as told, checking the request first: a stand-in for a broken switch.
final class FakeVDESwitch: @unchecked Sendable {
    let directory = NSTemporaryDirectory() + "vnic-fakevde-\(UUID().uuidString.prefix(8))"
    let request = Shared<[UInt8]>([])
    private let listener: Int32

    /// `answer` turns the request into the reply (`nil`: close without one).
    init(answer: @escaping @Sendable ([UInt8]) -> [UInt8]?) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        listener = try StreamAddress.unix(directory + "/ctl").listen()
        let listener = listener
        let request = request
        Thread {
            for _ in 0..<300 {
                let fd = accept(listener, nil, nil)
                guard fd < 0 else {
                    let bytes = receiveBytes(fd, count: 122, timeout: 3)
                    request.withLock { $0 = bytes }
                    if let reply = answer(bytes) {
                        _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        usleep(200_000)
                    }
                    close(fd)
                    return
                }
                usleep(10_000)
            }
        }.start()
    }

    deinit {
        close(listener)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite("VDE")
struct VDETests {
    @Test("two cards on Debian's vde_switch exchange frames; a port can be asked for; closing gives the port back")
    func twoCardsOnASwitch() throws {
        guard let vdeSwitch = VDESwitch() else { return }
        try vdeSwitch.start()
        let cardA = FramePort()
        let cardB = FramePort()
        do {
            let a = try AttachmentSetting(parsing: "vde:\(vdeSwitch.directory)").makeAttachment()
            let b = try VDEAttachment(configuration: VDEConfiguration(parsing: "\(vdeSwitch.directory),port=7"))
            cardA.attach(a)
            cardB.attach(b)
            #expect(cardA.carrier && cardB.carrier)
            #expect(b.switchPort == 7, "the port asked for")
            #expect(unixSockets(under: vdeSwitch.directory).filter { $0.contains("/.") }.count == 2)

            let hello = frame(to: .broadcast, from: mac(1), tag: 1)
            cardA.send(hello)
            #expect(cardB.receive() == [hello], "the switch floods a broadcast")
            let answer = frame(to: mac(1), from: mac(2), tag: 2, length: VDEAttachment.maximumFrameLength)
            cardB.send(answer)
            #expect(cardA.receive() == [answer], "and forwards to a learned address")
            cardB.send([UInt8](repeating: 0, count: VDEAttachment.maximumFrameLength + 1))
            #expect(b.counter("vde_drop_oversize_out") == 1)
            cardA.detach()
            cardB.detach()
            b.close()
            #expect(b.switchPort == nil && !b.isConnected)
        }
        #expect(
            eventually { unixSockets(under: vdeSwitch.directory).allSatisfy { !$0.contains("/.") } },
            "no socket of ours left: \(unixSockets(under: vdeSwitch.directory))")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: vdeSwitch.directory)) ?? []
        #expect(files.allSatisfy { !$0.hasPrefix(".") }, "our socket files are removed: \(files)")
    }

    @Test("the card's link follows the switch: down when it goes away, up on a fresh port when it returns")
    func linkFollowsTheSwitch() throws {
        guard let vdeSwitch = VDESwitch() else { return }
        try vdeSwitch.start()
        let vde = try VDEAttachment(configuration: VDEConfiguration(directory: vdeSwitch.directory))
        let card = FramePort()
        card.attach(vde)
        defer { card.detach() }
        #expect(card.carrier)
        vdeSwitch.stop()
        #expect(eventually(timeout: 5) { !card.carrier }, "carrier down once the switch is gone")
        #expect(vde.counter("vde_switch_lost") == 1)
        card.send(frame(to: .broadcast, from: mac(1)))
        #expect(vde.counter("vde_drop_link_down") == 1)

        try vdeSwitch.start()
        #expect(eventually(timeout: 5) { card.carrier }, "carrier up once the switch is back")
        #expect(vde.counter("vde_connects") == 2)
        let other = try VDEAttachment(configuration: VDEConfiguration(directory: vdeSwitch.directory))
        let peer = FramePort()
        peer.attach(other)
        defer { peer.detach() }
        let hello = frame(to: .broadcast, from: mac(3), tag: 3)
        peer.send(hello)
        #expect(card.receive() == [hello], "frames flow on the new port")
    }

    @Test("no switch, a bad property, or a switch that refuses or answers nonsense: a clear error naming the switch")
    func errors() throws {
        let nowhere = NSTemporaryDirectory() + "vnic-novde-\(UUID().uuidString.prefix(8))"
        #expect {
            try VDEAttachment(configuration: VDEConfiguration(directory: nowhere))
        } throws: { error in
            "\(error)".contains("connect to \(nowhere)/ctl (is vde_switch running?)")
        }
        for (setting, reason) in [
            ("vde:/tmp/x,port=0", "port=0: expected a port number"), ("vde:/tmp/x,colour=red", "unknown property"),
            ("vde:/" + String(repeating: "d", count: 120), "at most 107 bytes"),
        ] {
            #expect {
                try AttachmentSetting(parsing: setting)
            } throws: { error in
                "\(error)".contains(reason)
            }
        }

        let silent = try FakeVDESwitch { _ in nil }
        #expect {
            try VDEAttachment(configuration: VDEConfiguration(directory: silent.directory, port: 3))
        } throws: { error in
            "\(error)".contains("closed the connection instead of answering")
        }
        // The request as libvdeplug sends it: magic, version 3, the port in bits 8 and up, our socket's address.
        let request = silent.request.value
        #expect(request.count == 122)
        if request.count == 122 {
            let words = (0..<3).map { index in
                request.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self) }
            }
            #expect(words == [0xFEED_FACE, 3, 3 << 8])
            #expect(UnixSocketAddress.path(in: Array(request[12..<122]))?.hasPrefix(silent.directory + "/.") == true)
        }

        let garbage = try FakeVDESwitch { _ in [UInt8](repeating: 0x41, count: 110) }
        #expect {
            try VDEAttachment(configuration: VDEConfiguration(directory: garbage.directory))
        } throws: { error in
            "\(error)".contains("the switch's reply is not a unix socket address")
        }
        let missing = try FakeVDESwitch { _ in
            var reply = [UInt8](repeating: 0, count: 110)
            reply[0] = UInt8(AF_UNIX)
            for (index, byte) in "/nonexistent/001.5".utf8.enumerated() { reply[2 + index] = byte }
            return reply
        }
        #expect {
            try VDEAttachment(configuration: VDEConfiguration(directory: missing.directory))
        } throws: { error in
            "\(error)".contains("connect to the switch's data socket /nonexistent/001.5")
        }
        for fake in [silent.directory, garbage.directory, missing.directory] {
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: fake)) ?? []).filter { $0.hasPrefix(".") }
            #expect(left.isEmpty, "a failed attempt leaves no socket file: \(left)")
        }
    }
}
