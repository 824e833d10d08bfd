import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("NAT TFTP server")
struct NATTFTPTests {
    /// A TFTP root with `pxelinux.0` (1300 bytes), a subfolder file, and a symbolic link leading out.
    static func makeRoot() throws -> String {
        let root = temporaryPath("tftp")
        try FileManager.default.createDirectory(atPath: root + "/boot", withIntermediateDirectories: true)
        try Data((0..<1300).map { UInt8(truncatingIfNeeded: $0 % 253) }).write(
            to: URL(fileURLWithPath: root + "/pxelinux.0"))
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: root + "/boot/vmlinuz"))
        symlink("/etc", root + "/escape")
        return root
    }

    static func bench(root: String) throws -> NATBench {
        var configuration = loopbackNATConfiguration()
        configuration.tftpRoot = root
        return try NATBench(configuration)
    }

    static func request(_ opcode: UInt16, _ name: String, mode: String = "octet", options: [String] = []) -> [UInt8] {
        var packet: [UInt8] = []
        packet.appendBigEndian16(opcode)
        for field in [name, mode] + options { packet += Array(field.utf8) + [0] }
        return packet
    }

    /// The next UDP payload for the guest, with the server port it came from.
    static func nextReply(_ bench: NATBench) -> (port: UInt16, payload: [UInt8])? {
        guard let packet = bench.receivePackets(where: { $0.proto == 17 }).first else { return nil }
        #expect(packet.source == natGateway && packet.payload.bigEndian16(at: 2) == 1069)
        return (packet.payload.bigEndian16(at: 0), Array(packet.payload[8...]))
    }

    @Test("a read request is served block by block, and DHCP names the server")
    func readFile() throws {
        let root = try Self.makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bench = try Self.bench(root: root)
        bench.sendIP(guestUDP(from: 1069, to: IPv4Endpoint(natGateway, 69), payload: Self.request(1, "pxelinux.0")))
        var file: [UInt8] = []
        for expected in 1...3 {
            let reply = try #require(Self.nextReply(bench))
            #expect(
                reply.payload.bigEndian16(at: 0) == TFTPOpcode.data.rawValue
                    && reply.payload.bigEndian16(at: 2) == UInt16(expected))
            file += reply.payload[4...]
            var ack: [UInt8] = []
            ack.appendBigEndian16(TFTPOpcode.ack.rawValue)
            ack.appendBigEndian16(UInt16(expected))
            bench.sendIP(guestUDP(from: 1069, to: IPv4Endpoint(natGateway, reply.port), payload: ack))
        }
        #expect(file == (0..<1300).map { UInt8(truncatingIfNeeded: $0 % 253) })
        #expect(bench.nat.runtime.withEngine { $0.tftpSessions.isEmpty })
        #expect(bench.nat.runtime.withEngine { $0.config.announcedTFTPServer } == natGateway)
    }

    @Test("blksize and tsize options are acknowledged")
    func options() throws {
        let root = try Self.makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bench = try Self.bench(root: root)
        bench.sendIP(
            guestUDP(
                from: 1069, to: IPv4Endpoint(natGateway, 69),
                payload: Self.request(1, "boot/vmlinuz", options: ["blksize", "1400", "tsize", "0"])))
        let oack = try #require(Self.nextReply(bench))
        #expect(oack.payload.bigEndian16(at: 0) == TFTPOpcode.optionAck.rawValue)
        #expect(String(decoding: oack.payload[2...], as: UTF8.self) == "blksize\u{0}1400\u{0}tsize\u{0}6\u{0}")
        bench.sendIP(guestUDP(from: 1069, to: IPv4Endpoint(natGateway, oack.port), payload: [0, 4, 0, 0]))
        let data = try #require(Self.nextReply(bench))
        #expect(Array(data.payload[4...]) == Array("kernel".utf8))
    }

    @Test(
        "paths out of the root, writes and missing files are refused with a TFTP error",
        arguments: [
            ("../etc/passwd", 2), ("/etc/passwd", 2), ("boot/../../x", 2), ("escape/passwd", 2), ("missing", 1),
            ("boot", 1),
        ])
    func refused(name: String, code: UInt16) throws {
        let root = try Self.makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bench = try Self.bench(root: root)
        bench.sendIP(guestUDP(from: 1069, to: IPv4Endpoint(natGateway, 69), payload: Self.request(1, name)))
        let reply = try #require(Self.nextReply(bench))
        #expect(
            reply.payload.bigEndian16(at: 0) == TFTPOpcode.error.rawValue && reply.payload.bigEndian16(at: 2) == code)
        #expect(bench.counter("tftp_refused") == 1)
    }

    @Test("a write request is refused; truncated requests are dropped and counted")
    func writesAndTruncation() throws {
        let root = try Self.makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bench = try Self.bench(root: root)
        bench.sendIP(guestUDP(from: 1069, to: IPv4Endpoint(natGateway, 69), payload: Self.request(2, "new")))
        #expect(Self.nextReply(bench)?.payload.bigEndian16(at: 2) == 2)
        for payload: [UInt8] in [[0, 1], [0, 1, 0x61, 0x62], [0, 1, 0x61, 0], [0, 9, 0, 0]] {
            bench.sendIP(guestUDP(from: 1070, to: IPv4Endpoint(natGateway, 69), payload: payload))
        }
        #expect(bench.counter("drop_tftp_malformed") == 4)
        #expect(bench.nat.runtime.withEngine { $0.tftpSessions.isEmpty })
    }

    @Test("an unacknowledged block is sent again, then the transfer is abandoned")
    func retransmitAndGiveUp() throws {
        let root = try Self.makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let clock = Shared<UInt64>(1_000_000_000)
        var configuration = loopbackNATConfiguration()
        configuration.tftpRoot = root
        let nat = try NATAttachment(configuration: configuration, clock: { clock.value })
        defer { nat.close() }
        let port = FramePort()
        port.attach(nat)
        port.send(
            ethernetFrame(
                to: configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4,
                payload: guestUDP(from: 1069, to: IPv4Endpoint(natGateway, 69), payload: Self.request(1, "pxelinux.0")))
        )
        #expect(port.drain().count == 1)
        for _ in 0..<5 {
            clock.withLock { $0 += 1_100_000_000 }
            nat.runtime.runTimers()
            #expect(port.drain().count == 1)
        }
        clock.withLock { $0 += 1_100_000_000 }
        nat.runtime.runTimers()
        #expect(nat.counter("tftp_timeouts") == 1)
        #expect(nat.runtime.withEngine { $0.tftpSessions.isEmpty })
    }
}
