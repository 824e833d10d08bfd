import Glibc
import NICCore

/// The smallest guest network stack that shows a card working behind a NAT: DHCP, ARP for the gateway, and one TCP
/// connection that fetches a body over HTTP/1.0. It speaks through a ``GuestDriver`` (frames the driver received,
/// frames it transmits) and polls the card; every wait is bounded.
final class DemoGuest {
    let driver: any GuestDriver
    let mac: MACAddress
    private(set) var address: [UInt8] = [0, 0, 0, 0]
    private(set) var gateway: [UInt8] = [0, 0, 0, 0]
    private var gatewayMAC: [UInt8] = []
    private var seen = 0

    init(driver: any GuestDriver) {
        self.driver = driver
        mac = driver.harness.card.macAddress
    }

    // MARK: Frames

    /// Waits up to `seconds` for a received frame that `match` accepts (frames before it are skipped).
    private func wait(seconds: Double, _ match: ([UInt8]) -> Bool) throws(HarnessError) -> [UInt8]? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            driver.harness.card.service()
            try driver.serviceInterrupt()
            while seen < driver.received.count {
                let frame = driver.received[seen]
                seen += 1
                if match(frame) { return frame }
            }
            usleep(1000)
        }
        return nil
    }

    private func send(_ frame: [UInt8]) throws(HarnessError) {
        guard try driver.send(frame) else { throw HarnessError("the transmit ring is full") }
        try driver.serviceInterrupt()
    }

    private func ethernet(to destination: [UInt8], type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var frame = destination + mac.bytes
        frame.appendBigEndian16(type)
        return frame + payload
    }

    private static func be16(_ value: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian16(UInt16(truncatingIfNeeded: value))
        return bytes
    }
    private static func be32(_ value: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian32(value)
        return bytes
    }
    private static func read16(_ bytes: [UInt8], _ offset: Int) -> Int {
        bytes.load(bigEndian: UInt16.self, at: offset).map(Int.init) ?? -1
    }
    private static func read32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes.load(bigEndian: UInt32.self, at: offset) ?? 0
    }

    /// An IPv4 packet (no options, DF clear, TTL 64) with its header checksum.
    private func ipv4(protocol number: UInt8, from source: [UInt8], to destination: [UInt8], _ payload: [UInt8])
        -> [UInt8]
    {
        var header: [UInt8] = [0x45, 0] + Self.be16(20 + payload.count) + [0, 0, 0, 0, 64, number, 0, 0]
        header += source + destination
        header.storeBigEndian16(InternetChecksum.of(header), at: 10)
        return header + payload
    }

    /// A UDP or TCP checksum over the pseudo-header and `segment`.
    private static func transportChecksum(
        _ number: UInt8, _ source: [UInt8], _ destination: [UInt8], _ segment: [UInt8]
    )
        -> UInt16
    {
        var sum = (source + destination).withUnsafeBytes {
            InternetChecksum.pseudoHeader(addresses: $0, protocolNumber: number, length: segment.count)
        }
        sum.add(segment)
        return sum.value
    }

    /// The IPv4 payload of `frame` if it carries protocol `number` to this guest (or to anyone, for DHCP).
    private static func ipv4Payload(_ frame: [UInt8], protocol number: UInt8) -> (source: [UInt8], payload: [UInt8])? {
        frame.withUnsafeBytes { raw in
            guard raw.count >= 34, let ethernet = EthernetHeader(raw, lookingThroughVLAN: false),
                ethernet.etherType == EtherType.ipv4, let ip = IPv4Header(ethernet.payload),
                ip.protocolNumber == number, ip.totalLength >= ip.headerLength, ip.totalLength <= ip.bytes.count
            else { return nil }
            return (Array(ip.bytes[12..<16]), Array(ip.bytes[ip.headerLength..<ip.totalLength]))
        }
    }

    // MARK: DHCP

    /// DISCOVER, OFFER, REQUEST, ACK; returns the leased address.
    func dhcp(transaction: UInt32 = 0x7654_3210) throws(HarnessError) -> [UInt8] {
        func message(type: UInt8, extra: [UInt8]) -> [UInt8] {
            var body: [UInt8] = [1, 1, 6, 0] + Self.be32(transaction) + [0, 0, 0x80, 0]
            body += [UInt8](repeating: 0, count: 16) + mac.bytes + [UInt8](repeating: 0, count: 10 + 192)
            body += [0x63, 0x82, 0x53, 0x63, 53, 1, type] + extra + [55, 3, 1, 3, 6, 255]
            let udp = Self.be16(68) + Self.be16(67) + Self.be16(8 + body.count) + [0, 0] + body
            return ethernet(
                to: [UInt8](repeating: 0xFF, count: 6), type: 0x0800,
                ipv4(protocol: 17, from: [0, 0, 0, 0], to: [255, 255, 255, 255], udp))
        }
        func reply(_ type: UInt8) throws(HarnessError) -> (yours: [UInt8], server: [UInt8], router: [UInt8])? {
            let frame = try wait(seconds: 5) { frame in
                guard let udp = Self.ipv4Payload(frame, protocol: 17), Self.read16(udp.payload, 2) == 68,
                    udp.payload.count >= 8 + 240, Self.read32(udp.payload, 12) == transaction
                else { return false }
                return Self.options(udp.payload)[53] == [type]
            }
            guard let frame, let udp = Self.ipv4Payload(frame, protocol: 17) else { return nil }
            let options = Self.options(udp.payload)
            return (Array(udp.payload[24..<28]), options[54] ?? [], Array((options[3] ?? []).prefix(4)))
        }
        try send(message(type: 1, extra: []))
        guard let offer = try reply(2) else { throw HarnessError("no DHCP OFFER within 5 s") }
        try send(message(type: 3, extra: [50, 4] + offer.yours + [54, 4] + offer.server))
        guard let ack = try reply(5) else { throw HarnessError("no DHCP ACK within 5 s") }
        address = ack.yours
        gateway = ack.router.count == 4 ? ack.router : offer.server
        return address
    }

    /// The DHCP options of a BOOTP message inside a UDP datagram, by code (bounded, never past the end).
    private static func options(_ udp: [UInt8]) -> [UInt8: [UInt8]] {
        var result: [UInt8: [UInt8]] = [:]
        var offset = 8 + 240
        while offset < udp.count, udp[offset] != 255 {
            if udp[offset] == 0 {
                offset += 1
                continue
            }
            guard offset + 1 < udp.count else { break }
            let length = Int(udp[offset + 1])
            guard offset + 2 + length <= udp.count else { break }
            result[udp[offset]] = Array(udp[(offset + 2)..<(offset + 2 + length)])
            offset += 2 + length
        }
        return result
    }

    // MARK: ARP

    /// Resolves the gateway's MAC address.
    func resolveGateway() throws(HarnessError) -> MACAddress {
        let request: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1] + mac.bytes + address + [0, 0, 0, 0, 0, 0] + gateway
        try send(ethernet(to: [UInt8](repeating: 0xFF, count: 6), type: 0x0806, request))
        let reply = try wait(seconds: 5) { frame in
            frame.count >= 42 && Self.read16(frame, 12) == 0x0806 && Self.read16(frame, 20) == 2
                && Array(frame[28..<32]) == gateway
        }
        guard let reply else { throw HarnessError("no ARP reply from the gateway within 5 s") }
        gatewayMAC = Array(reply[22..<28])
        return MACAddress(bytes: gatewayMAC) ?? MACAddress(rawValue: 0)
    }

    // MARK: TCP

    private func tcp(
        _ port: UInt16, _ localPort: UInt16, sequence: UInt32, acknowledgment: UInt32, flags: UInt8,
        _ payload: [UInt8] = []
    ) -> [UInt8] {
        let window = 8192  // a quarter of the PCnet's 32-descriptor ring
        var segment = Self.be16(Int(localPort)) + Self.be16(Int(port)) + Self.be32(sequence)
        segment += Self.be32(acknowledgment) + [0x50, flags] + Self.be16(window) + [0, 0, 0, 0] + payload
        segment.storeBigEndian16(Self.transportChecksum(6, address, gateway, segment), at: 16)
        return ethernet(to: gatewayMAC, type: 0x0800, ipv4(protocol: 6, from: address, to: gateway, segment))
    }

    /// Fetches `path` from the gateway's `port` (the host's loopback behind a NAT with localhost-reachable) over
    /// HTTP/1.0 and returns the response body. The guest acknowledges in-order data only; the NAT resends the rest.
    func httpGet(port: UInt16, path: String, localPort: UInt16 = 40_000, seconds: Double = 20) throws(HarnessError)
        -> [UInt8]
    {
        var sequence: UInt32 = 0x1000_0000
        func segment(_ frame: [UInt8]) -> (flags: UInt8, sequence: UInt32, acknowledgment: UInt32, data: [UInt8])? {
            guard let ip = Self.ipv4Payload(frame, protocol: 6), ip.source == gateway, ip.payload.count >= 20,
                Self.read16(ip.payload, 0) == Int(port), Self.read16(ip.payload, 2) == Int(localPort)
            else { return nil }
            let offset = Int(ip.payload[12] >> 4) * 4
            guard offset >= 20, offset <= ip.payload.count else { return nil }
            return (
                ip.payload[13], Self.read32(ip.payload, 4), Self.read32(ip.payload, 8), Array(ip.payload[offset...])
            )
        }
        try send(tcp(port, localPort, sequence: sequence, acknowledgment: 0, flags: 0x02))
        let synAck = try wait(seconds: 5) { segment($0).map { $0.flags & 0x12 == 0x12 } ?? false }
        guard let synAck, let handshake = segment(synAck) else { throw HarnessError("no SYN-ACK within 5 s") }
        guard handshake.acknowledgment == sequence &+ 1 else {
            throw HarnessError("the SYN-ACK acknowledges the wrong sequence")
        }
        sequence &+= 1
        var expected = handshake.sequence &+ 1
        let request = Array("GET \(path) HTTP/1.0\r\nHost: gateway\r\n\r\n".utf8)
        try send(tcp(port, localPort, sequence: sequence, acknowledgment: expected, flags: 0x18, request))
        sequence &+= UInt32(request.count)
        var response: [UInt8] = []
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var finished = false
        while !finished, ContinuousClock.now < deadline {
            guard let frame = try wait(seconds: 1, { segment($0) != nil }), let parsed = segment(frame) else {
                // Nothing for a second: acknowledge again so the NAT resends what was lost.
                try send(tcp(port, localPort, sequence: sequence, acknowledgment: expected, flags: 0x10))
                continue
            }
            if parsed.flags & 0x04 != 0 { throw HarnessError("the connection was reset") }
            if parsed.sequence == expected {
                response += parsed.data
                expected &+= UInt32(parsed.data.count)
                if parsed.flags & 0x01 != 0 {
                    expected &+= 1
                    finished = true
                }
            }
            try send(tcp(port, localPort, sequence: sequence, acknowledgment: expected, flags: finished ? 0x11 : 0x10))
        }
        guard finished else { throw HarnessError("the response did not finish within \(Int(seconds)) s") }
        let separator = Array("\r\n\r\n".utf8)
        guard let split = response.indices.first(where: { response[$0...].starts(with: separator) }) else {
            throw HarnessError("no HTTP header in the response")
        }
        return Array(response[(split + separator.count)...])
    }
}
