import Foundation
import Glibc
import NICCore
import Testing

@testable import NetBackend

/// The guest's IPv6 addresses in NAT tests: one in the default prefix, and its link-local one.
let natGuestIP6 = IPv6Address("fd17:625c:f037:2::15")!
let natGuestLinkLocal = IPv6Address.linkLocal(for: natGuestMAC)
let natGateway6 = IPv6Address("fd17:625c:f037:2::2")!
let natDNS6 = IPv6Address("fd17:625c:f037:2::3")!

extension NATBench {
    /// Sends an IPv6 packet from the guest; to the gateway MAC, or to the Ethernet group of a multicast destination.
    func sendIP6(_ packet: [UInt8], metadata: FrameMetadata = .none) {
        let destination = IPv6Address(in: packet, at: 24) ?? .any
        let mac = destination.isMulticast ? destination.multicastMAC : gatewayMAC
        port.send(
            ethernetFrame(to: mac, from: natGuestMAC, type: EtherType.ipv6, payload: packet), metadata: metadata)
    }

    /// The next IPv6 packets for the guest matching `filter`, waiting up to `timeout`; each with its frame's
    /// destination MAC.
    func receivePackets6(
        atLeast count: Int = 1, timeout: Double = 3, where filter: (IPv6Packet) -> Bool = { _ in true }
    ) -> [(packet: IPv6Packet, mac: MACAddress)] {
        var packets: [(packet: IPv6Packet, mac: MACAddress)] = []
        let deadline = Date().addingTimeInterval(timeout)
        while packets.count < count, Date() < deadline {
            for frame in port.drain() where frame.bigEndian16(at: 12) == EtherType.ipv6 {
                let mac = MACAddress(bytes: frame[0..<6]) ?? MACAddress(rawValue: 0)
                if let packet = try? IPv6Packet(parsing: frame, at: 14), filter(packet) {
                    packets.append((packet, mac))
                }
            }
            if packets.count < count { usleep(2000) }
        }
        return packets
    }

    /// ICMPv6 messages of `type` for the guest, with valid checksums, waiting up to `timeout`.
    func receiveICMPv6(type: UInt8, timeout: Double = 3) -> [(packet: IPv6Packet, mac: MACAddress)] {
        receivePackets6(timeout: timeout) {
            $0.nextHeader == IPProtocolNumber.icmpv6 && $0.payload.first == type
                && transportChecksum(source: $0.source, destination: $0.destination, proto: 58, segment: $0.payload)
                    == 0
        }
    }
}

/// An IPv6 packet from the guest.
func guestPacket6(
    to destination: IPv6Address, nextHeader: UInt8, payload: [UInt8], from source: IPv6Address = natGuestIP6,
    hopLimit: UInt8 = 64
) -> [UInt8] {
    IPv6Packet.build(
        source: source, destination: destination, nextHeader: nextHeader, payload: payload, hopLimit: hopLimit)
}

/// An ICMPv6 packet from the guest with its checksum filled.
func guestICMPv6(
    to destination: IPv6Address, _ message: [UInt8], from source: IPv6Address = natGuestIP6, hopLimit: UInt8 = 255
) -> [UInt8] {
    var message = message
    message.storeBigEndian16(0, at: 2)
    message.storeBigEndian16(
        transportChecksum(source: source, destination: destination, proto: 58, segment: message), at: 2)
    return guestPacket6(to: destination, nextHeader: 58, payload: message, from: source, hopLimit: hopLimit)
}

/// An ICMPv6 echo request (checksum left for ``guestICMPv6(to:_:from:hopLimit:)``).
func echoRequest6(identifier: UInt16, sequence: UInt16, data: [UInt8] = Array("vnic ping6".utf8)) -> [UInt8] {
    var message: [UInt8] = [128, 0, 0, 0]
    message.appendBigEndian16(identifier)
    message.appendBigEndian16(sequence)
    return message + data
}

/// A neighbor solicitation for `target`, with a source link-layer option unless `sourceLinkLayer` is false.
func solicitation(for target: IPv6Address, sourceLinkLayer: Bool = true) -> [UInt8] {
    var message: [UInt8] = [135, 0, 0, 0, 0, 0, 0, 0] + target.bytes
    if sourceLinkLayer { message += [1, 1] + natGuestMAC.bytes }
    return message
}

/// A UDP packet from the guest over IPv6.
func guestUDP6(from sourcePort: UInt16, to destination: IPEndpoint, payload: [UInt8]) -> [UInt8] {
    guard case .v6(let address) = destination.address else { return [] }
    let datagram = TransportSegment.udp(
        from: IPEndpoint(.v6(natGuestIP6), sourcePort), to: destination, payload: payload)
    return guestPacket6(to: address, nextHeader: IPProtocolNumber.udp, payload: datagram)
}

/// A TCP segment from the guest over IPv6.
func guestTCP6(
    from sourcePort: UInt16, to destination: IPEndpoint, sequence: UInt32, acknowledgment: UInt32 = 0,
    flags: TCPFlags, window: UInt16 = 65_535, options: [UInt8] = [], payload: [UInt8] = []
) -> [UInt8] {
    guard case .v6(let address) = destination.address else { return [] }
    let segment = TransportSegment.tcp(
        from: IPEndpoint(.v6(natGuestIP6), sourcePort), to: destination, sequence: sequence,
        acknowledgment: acknowledgment, flags: flags, window: window, options: options, payload: payload)
    return guestPacket6(to: address, nextHeader: IPProtocolNumber.tcp, payload: segment)
}

/// A socket bound to `[::1]` on a free port; TCP listening, or UDP echoing on a bounded thread.
final class LoopbackSocket6: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    /// `nil` when the host has no IPv6 loopback.
    init?(tcp: Bool) {
        fd = socket(AF_INET6, Int32((tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue), 0)
        guard fd >= 0 else { return nil }
        if tcp { HostSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
        guard HostSocket.bind(fd, to: IPEndpoint(.v6(.loopback), 0)) == 0 else {
            close(fd)
            return nil
        }
        if tcp { listen(fd, 16) }
        port = HostSocket.localAddress(fd)?.port ?? 0
    }

    /// Accepts one connection, waiting up to `timeout` seconds; the descriptor or -1.
    func accept(timeout: Double = 3) -> Int32 {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return -1 }
        return Glibc.accept(fd, nil, nil)
    }

    /// Receives one datagram (waiting up to `timeout`) and sends it back; the datagram.
    func echoOnce(timeout: Double = 3) -> [UInt8]? {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let (count, sender) = buffer.withUnsafeMutableBytes { HostSocket.receiveFrom(fd, into: $0) }
        guard count >= 0, let sender else { return nil }
        let data = Array(buffer[0..<count])
        _ = HostSocket.send(fd, data, to: sender)
        return data
    }

    deinit { close(fd) }
}

/// A deterministic generator (SplitMix64), so a failing random test can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
