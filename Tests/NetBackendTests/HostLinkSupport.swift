import Foundation
import Glibc
import NICCore
import NICTestSupport

@testable import NetBackend

/// A client of a ``StreamLink`` speaking QEMU's `-netdev stream` framing, as QEMU would, with bounded waits.
final class StreamTestClient {
    let fd: Int32

    /// Connects to `address`; `nil` when the connection fails.
    init?(_ address: StreamAddress) {
        switch address {
        case .tcp(let endpoint):
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard HostSocket.connect(fd, to: endpoint) == 0 else {
                close(fd)
                return nil
            }
        case .unix(let path):
            fd = connectSocket(path: path)
            guard fd >= 0 else { return nil }
        }
    }

    deinit { close(fd) }

    /// Sends bytes as they are (a header, part of a frame).
    func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends `frame` behind its 4-byte big-endian length.
    func send(frame: [UInt8]) {
        let length = UInt32(frame.count)
        sendRaw(
            [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + frame)
    }

    /// The next frame, or `nil` when none arrives within `timeout` or the server closed the connection.
    func receiveFrame(timeout: Double = 3) -> [UInt8]? {
        let header = receiveBytes(fd, count: 4, timeout: timeout)
        guard header.count == 4 else { return nil }
        let length = Int(header.bigEndian32(at: 0))
        let frame = receiveBytes(fd, count: length, timeout: timeout)
        return frame.count == length ? frame : nil
    }

    /// The first frame within `timeout` for which `match` holds, skipping others (at most 100).
    func receiveFrame(timeout: Double = 3, where match: ([UInt8]) -> Bool) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(timeout)
        for _ in 0..<100 {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let frame = receiveFrame(timeout: left) else { return nil }
            if match(frame) { return frame }
        }
        return nil
    }

    /// Whether the server closes the connection within `timeout`.
    func closedByServer(timeout: Double = 3) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 50) == 1 else { continue }
            let got = recv(fd, &buffer, buffer.count, 0)
            if got <= 0 { return true }
        }
        return false
    }
}

/// An ARP request for `target` from the test guest (or from `sender` at `senderIP`).
func arpRequest(
    for target: IPv4Address, from sender: MACAddress = natGuestMAC, at senderIP: IPv4Address = natGuestIP
) -> [UInt8] {
    var request: [UInt8] = []
    request.appendBigEndian16(1)
    request.appendBigEndian16(EtherType.ipv4)
    request += [6, 4]
    request.appendBigEndian16(1)
    request += sender.bytes + senderIP.bytes + [0, 0, 0, 0, 0, 0] + target.bytes
    return ethernetFrame(to: .broadcast, from: sender, type: EtherType.arp, payload: request)
}

/// A DHCP DISCOVER from the test guest, broadcast.
func dhcpDiscover() -> [UInt8] {
    let message = NATAddressingTests.dhcpMessage(type: .discover)
    let datagram = udpDatagram(from: IPv4Endpoint(.any, 68), to: IPv4Endpoint(.broadcast, 67), payload: message)
    let packet = guestPacket(to: .broadcast, proto: IPProtocolNumber.udp, payload: datagram, from: .any)
    return ethernetFrame(to: .broadcast, from: natGuestMAC, type: EtherType.ipv4, payload: packet)
}

/// The DHCP message (from the BOOTP header on) a frame carries from server port 67, if it does.
func dhcpMessage(in frame: [UInt8]) -> [UInt8]? {
    guard frame.count > 14, frame.bigEndian16(at: 12) == EtherType.ipv4,
        let packet = try? IPv4Packet(parsing: frame, at: 14),
        packet.proto == IPProtocolNumber.udp, packet.payload.count > 8 + 240, packet.payload.bigEndian16(at: 0) == 67
    else { return nil }
    return Array(packet.payload[8...])
}
