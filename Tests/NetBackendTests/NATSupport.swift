import Foundation
import Glibc
import NICCore
import Synchronization

@testable import NetBackend

/// The guest card's address in NAT tests.
let natGuestMAC = MACAddress("52:54:00:12:34:56")!
let natGuestIP = IPv4Address(10, 0, 2, 15)
let natGateway = IPv4Address(10, 0, 2, 2)
let natDNS = IPv4Address(10, 0, 2, 3)

/// A configuration that keeps every test on loopback: `restrict` on, nothing allowed, host loopback reachable
/// through the gateway, DNS to `dns` (nothing by default).
func loopbackNATConfiguration(dns: [IPv4Endpoint] = []) -> NATConfiguration {
    loopbackNATConfiguration(resolvers: dns.map(IPEndpoint.init))
}

/// ``loopbackNATConfiguration(dns:)`` with resolvers of either family.
func loopbackNATConfiguration(resolvers dns: [IPEndpoint]) -> NATConfiguration {
    var configuration = NATConfiguration(slot: 0)
    configuration.restrict = true
    configuration.localhostReachable = true
    configuration.dnsServers = dns
    return configuration
}

/// A NAT attached to a fresh port, closed when the test's scope ends.
final class NATBench: @unchecked Sendable {
    let nat: NATAttachment
    let port = FramePort(queueCapacity: 4096)
    let gatewayMAC: MACAddress

    init(_ configuration: NATConfiguration = loopbackNATConfiguration()) throws {
        nat = try NATAttachment(configuration: configuration)
        gatewayMAC = configuration.gatewayMAC
        port.attach(nat)
    }

    deinit {
        port.detach()
        nat.close()
    }

    /// Sends an IPv4 packet from the guest inside an Ethernet frame to the gateway.
    func sendIP(_ packet: [UInt8], to destination: MACAddress? = nil, metadata: FrameMetadata = .none) {
        port.send(
            ethernetFrame(to: destination ?? gatewayMAC, from: natGuestMAC, type: EtherType.ipv4, payload: packet),
            metadata: metadata)
    }

    /// Waits (bounded) until at least `count` frames are queued for the card, and returns every queued frame.
    func receive(atLeast count: Int = 1, timeout: Double = 3) -> [[UInt8]] {
        port.receive(atLeast: count, timeout: timeout)
    }

    /// The next IPv4 packets for the guest matching `filter`, waiting up to `timeout`.
    func receivePackets(
        atLeast count: Int = 1, timeout: Double = 3, where filter: (IPv4Packet) -> Bool = { _ in true }
    ) -> [IPv4Packet] {
        var packets: [IPv4Packet] = []
        let deadline = Date().addingTimeInterval(timeout)
        while packets.count < count, Date() < deadline {
            for frame in port.drain() where frame.bigEndian16(at: 12) == EtherType.ipv4 {
                if let packet = try? IPv4Packet(parsing: frame, at: 14), filter(packet) { packets.append(packet) }
            }
            if packets.count < count { usleep(2000) }
        }
        return packets
    }

    /// The IPv4 packets queued for the guest now, without waiting.
    func queuedPackets() -> [IPv4Packet] {
        port.drain().compactMap { frame in
            frame.bigEndian16(at: 12) == EtherType.ipv4 ? try? IPv4Packet(parsing: frame, at: 14) : nil
        }
    }

    func counter(_ name: String) -> UInt64 { nat.counter(name) }
}

/// An IPv4 packet from the guest.
func guestPacket(
    to destination: IPv4Address, proto: UInt8, payload: [UInt8], from source: IPv4Address = natGuestIP,
    ttl: UInt8 = 64, identification: UInt16 = 1, moreFragments: Bool = false, fragmentOffset: Int = 0,
    dontFragment: Bool = false
) -> [UInt8] {
    IPv4Packet.build(
        source: source, destination: destination, proto: proto, payload: payload, ttl: ttl,
        identification: identification, dontFragment: dontFragment, moreFragments: moreFragments,
        fragmentOffset: fragmentOffset)
}

/// A UDP datagram with a correct checksum.
func udpDatagram(
    from source: IPv4Endpoint, to destination: IPv4Endpoint, payload: [UInt8]
) -> [UInt8] {
    TransportSegment.udp(from: source, to: destination, payload: payload)
}

/// A UDP packet from the guest.
func guestUDP(from sourcePort: UInt16, to destination: IPv4Endpoint, payload: [UInt8]) -> [UInt8] {
    let datagram = udpDatagram(from: IPv4Endpoint(natGuestIP, sourcePort), to: destination, payload: payload)
    return guestPacket(to: destination.address, proto: IPProtocolNumber.udp, payload: datagram)
}

/// An ICMP echo request.
func echoRequest(identifier: UInt16, sequence: UInt16, data: [UInt8] = Array("vnic ping".utf8)) -> [UInt8] {
    var message: [UInt8] = [8, 0, 0, 0]
    message.appendBigEndian16(identifier)
    message.appendBigEndian16(sequence)
    message += data
    message.storeBigEndian16(InternetChecksum.of(message), at: 2)
    return message
}

/// A TCP segment from the guest with a correct checksum.
func guestTCP(
    from sourcePort: UInt16, to destination: IPv4Endpoint, sequence: UInt32, acknowledgment: UInt32 = 0,
    flags: TCPFlags, window: UInt16 = 65_535, options: [UInt8] = [], payload: [UInt8] = []
) -> [UInt8] {
    let segment = TransportSegment.tcp(
        from: IPv4Endpoint(natGuestIP, sourcePort), to: destination, sequence: sequence, acknowledgment: acknowledgment,
        flags: flags, window: window, options: options, payload: payload)
    return guestPacket(to: destination.address, proto: IPProtocolNumber.tcp, payload: segment)
}

/// A UDP socket bound to 127.0.0.1 on a free port that echoes (or answers with `reply`) on a thread, bounded.
final class LoopbackUDPServer: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    let received = Shared<[[UInt8]]>([])
    /// Who sent each datagram in ``received``.
    let senders = Shared<[IPv4Endpoint]>([])
    private let running = Atomic<Bool>(true)

    /// Echoes every datagram, or sends what `reply` returns for it (nothing when it returns `nil`).
    init(reply: (@Sendable ([UInt8]) -> [UInt8]?)? = nil) {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = HostSocket.bind(fd, to: IPv4Endpoint(.loopback, 0))
        port = HostSocket.localEndpoint(fd)?.port ?? 0
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            for _ in 0..<2000 where running.load(ordering: .acquiring) {
                var address = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
                        }
                    }
                }
                guard count >= 0 else { continue }
                let data = Array(buffer[0..<count])
                received.withLock { $0.append(data) }
                senders.withLock { $0.append(HostSocket.endpoint(address)) }
                guard let answer = reply.map({ $0(data) }) ?? data else { continue }
                _ = HostSocket.send(fd, answer, to: HostSocket.endpoint(address))
            }
        }
        thread.start()
    }

    func stop() {
        running.store(false, ordering: .releasing)
        usleep(60_000)
        close(fd)
    }
}

/// A TCP listener on 127.0.0.1 with a free port.
final class LoopbackTCPListener: Sendable {
    let fd: Int32
    let port: UInt16

    init() {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        HostSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        _ = HostSocket.bind(fd, to: IPv4Endpoint(.loopback, 0))
        listen(fd, 16)
        port = HostSocket.localEndpoint(fd)?.port ?? 0
    }

    /// Accepts one connection, waiting up to `timeout` seconds; the descriptor or -1.
    func accept(timeout: Double = 3) -> Int32 {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return -1 }
        return Glibc.accept(fd, nil, nil)
    }

    deinit { close(fd) }
}
