import Foundation
import Glibc
import NICCore
import Testing

@testable import NetBackend

@Suite("NAT hostile frames")
struct NATHostileTests {
    /// A NAT that can reach nothing at all on the host: restrict mode, no loopback, no DNS.
    static func sealedBench() throws -> NATBench {
        var configuration = NATConfiguration(slot: 0)
        configuration.restrict = true
        configuration.localhostReachable = false
        configuration.dnsServers = []
        return try NATBench(configuration)
    }

    static func frame(_ packet: [UInt8], type: UInt16 = EtherType.ipv4) -> [UInt8] {
        ethernetFrame(to: NATConfiguration().gatewayMAC, from: natGuestMAC, type: type, payload: packet)
    }

    /// Rewrites an IPv4 header field and fixes the header checksum.
    static func patched(_ packet: [UInt8], _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = packet
        change(&bytes)
        let headerLength = Int(bytes.byte(at: 0) & 0xF) * 4
        bytes.storeBigEndian16(0, at: 10)
        if headerLength >= 20, headerLength <= bytes.count {
            bytes.storeBigEndian16(InternetChecksum.of(Array(bytes[0..<headerLength])), at: 10)
        }
        return bytes
    }

    @Test("frames shorter than their headers are dropped and counted, never trusted")
    func shortFrames() throws {
        let bench = try Self.sealedBench()
        for length in 0..<14 { bench.port.send([UInt8](repeating: 0xFF, count: length)) }
        #expect(bench.counter("drop_short_frame") == 14)
        let echo = guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1))
        // Truncated anywhere inside the IP header or the ICMP header.
        for cut in [0, 1, 19] {
            bench.port.send(Array(Self.frame(echo).prefix(14 + cut)))
        }
        #expect(bench.counter("drop_ip_malformed") == 3)
        // A truncated ARP.
        bench.port.send(Array(ethernetFrame(to: .broadcast, from: natGuestMAC, type: 0x0806, payload: [0, 1, 8, 0])))
        #expect(bench.counter("drop_arp_malformed") >= 1)
        #expect(bench.port.drain().isEmpty)
    }

    @Test("IP headers whose lengths lie are dropped")
    func lyingIPLengths() throws {
        let bench = try Self.sealedBench()
        let echo = guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1))
        let cases: [[UInt8]] = [
            Self.patched(echo) { $0.storeBigEndian16(UInt16($0.count + 100), at: 2) },  // longer than the frame
            Self.patched(echo) { $0.storeBigEndian16(12, at: 2) },  // shorter than the header
            Self.patched(echo) { $0[0] = 0x44 },  // IHL 4
            Self.patched(echo) { $0[0] = 0x4F },  // IHL 15: 60 bytes of header, past the packet's 37
            Self.patched(echo) { $0[0] = 0x65 },  // version 6 inside an IPv4 frame
        ]
        for packet in cases { bench.port.send(Self.frame(packet)) }
        #expect(bench.counter("drop_ip_malformed") == UInt64(cases.count))
        var badChecksum = echo
        badChecksum[10] ^= 1
        bench.port.send(Self.frame(badChecksum))
        #expect(bench.counter("drop_ip_checksum") == 1)
        // Ethernet padding past the IP total length is ignored: the echo is still answered.
        bench.port.send(Self.frame(echo + [UInt8](repeating: 0xEE, count: 30)))
        #expect(bench.port.drain().count == 1)
    }

    @Test("truncated and lying UDP, TCP and ICMP headers are dropped and counted")
    func truncatedTransport() throws {
        let bench = try Self.sealedBench()
        let udp = guestUDP(from: 1, to: IPv4Endpoint(natGateway, 9), payload: [1, 2, 3, 4])
        bench.port.send(Self.frame(guestPacket(to: natGateway, proto: 17, payload: [0, 1, 0, 9])))
        // UDP length past the packet
        bench.port.send(Self.frame(Self.patched(udp) { $0.storeBigEndian16(200, at: 24) }))
        bench.port.send(Self.frame(Self.patched(udp) { $0.storeBigEndian16(4, at: 24) }))  // UDP length under 8
        #expect(bench.counter("drop_udp_malformed") == 3)
        var badSum = udp
        badSum[29] ^= 0xFF
        bench.port.send(Self.frame(badSum))
        #expect(bench.counter("drop_udp_checksum") == 1)

        bench.port.send(Self.frame(guestPacket(to: natGateway, proto: 1, payload: [8, 0, 0, 0])))
        #expect(bench.counter("drop_icmp_malformed") == 1)

        let syn = guestTCP(from: 1, to: IPv4Endpoint(natGateway, 9), sequence: 1, flags: .syn)
        bench.port.send(Self.frame(guestPacket(to: natGateway, proto: 6, payload: Array(syn[20..<30]))))
        #expect(bench.counter("drop_tcp_checksum") + bench.counter("drop_tcp_malformed") == 1)
        // Data offsets that lie, and options that run past the header: correct checksums, bad structure.
        for (offset, options) in [(UInt8(0xF0), [UInt8]()), (0x40, []), (0x60, [2, 40, 0, 0]), (0x60, [3, 0, 1, 1])] {
            var segment = Array(syn[20...]) + options
            segment[12] = offset
            segment.storeBigEndian16(0, at: 16)
            segment.storeBigEndian16(
                transportChecksum(source: natGuestIP, destination: natGateway, proto: 6, segment: segment), at: 16)
            bench.port.send(Self.frame(guestPacket(to: natGateway, proto: 6, payload: segment)))
        }
        #expect(bench.counter("drop_tcp_malformed") >= 4)
        #expect(bench.nat.flowCounts.tcp == 0)
    }

    @Test("a checksum offload request pointing outside the frame is dropped; a good one is honoured")
    func checksumOffload() throws {
        let bench = try Self.sealedBench()
        let echo = guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1))
        bench.port.send(Self.frame(echo), metadata: FrameMetadata(checksum: ChecksumRequest(start: 9000, offset: 2)))
        bench.port.send(Self.frame(echo), metadata: FrameMetadata(checksum: ChecksumRequest(start: 14, offset: -3)))
        #expect(bench.counter("drop_ip_malformed") == 2)
        // A UDP datagram whose checksum field holds only the pseudo-header sum, as a card with offload leaves it.
        var configuration = loopbackNATConfiguration()
        configuration.restrict = true
        let server = LoopbackUDPServer()
        defer { server.stop() }
        let open = try NATBench(configuration)
        var packet = guestUDP(from: 7, to: IPv4Endpoint(natGateway, server.port), payload: [9, 9, 9])
        var pseudo = InternetChecksum()
        pseudo.add(natGuestIP.bytes + natGateway.bytes)
        pseudo.add(word: 17)
        pseudo.add(word: 11)
        packet.storeBigEndian16(~pseudo.value, at: 26)
        open.port.send(Self.frame(packet), metadata: FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 6)))
        #expect(open.receivePackets { $0.proto == 17 }.count == 1)
        #expect(server.received.value == [[9, 9, 9]])
    }

    // MARK: Fragments

    static func fragments(of packet: [UInt8], size: Int, identification: UInt16 = 77) -> [[UInt8]] {
        let header = Array(packet[0..<20])
        let payload = Array(packet[20...])
        var result: [[UInt8]] = []
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + size)
            result.append(
                IPv4Packet.build(
                    source: IPv4Address(rawValue: header.bigEndian32(at: 12)),
                    destination: IPv4Address(rawValue: header.bigEndian32(at: 16)),
                    proto: header[9], payload: Array(payload[offset..<end]), identification: identification,
                    moreFragments: end < payload.count, fragmentOffset: offset))
            offset = end
        }
        return result
    }

    @Test("fragments are reassembled in any order")
    func reassembly() throws {
        let bench = try Self.sealedBench()
        let echo = guestPacket(
            to: natGateway, proto: 1,
            payload: echoRequest(identifier: 5, sequence: 6, data: [UInt8](repeating: 0x33, count: 3000)))
        for fragment in Self.fragments(of: echo, size: 1024).reversed() { bench.port.send(Self.frame(fragment)) }
        var replies = NATReassembly()
        var reply: IPv4Packet?
        for fragment in bench.queuedPackets() {
            #expect(fragment.header.count + fragment.payload.count <= 1500)
            if case .complete(let whole) = replies.add(fragment, now: 0, limits: NATLimits(), timeout: 1) {
                reply = whole
            }
        }
        #expect(reply?.payload.count == 3008 && reply?.payload[0] == 0)
        #expect(bench.counter("reassembled") == 1)
    }

    @Test("overlapping fragments drop the whole datagram")
    func overlap() throws {
        let bench = try Self.sealedBench()
        let echo = guestPacket(
            to: natGateway, proto: 1,
            payload: echoRequest(identifier: 5, sequence: 6, data: [UInt8](repeating: 0x33, count: 2000)))
        var pieces = Self.fragments(of: echo, size: 1024)
        let overlapping = IPv4Packet.build(
            source: natGuestIP, destination: natGateway, proto: 1, payload: [UInt8](repeating: 0, count: 16),
            identification: 77, moreFragments: true, fragmentOffset: 1016)
        pieces.insert(overlapping, at: 1)
        for piece in pieces { bench.port.send(Self.frame(piece)) }
        #expect(bench.counter("drop_fragment_overlap") == 1)
        #expect(bench.counter("reassembled") == 0)
        #expect(bench.port.drain().isEmpty)
    }

    @Test("endless fragments are bounded per datagram, in number of datagrams, in size and in time")
    func endlessFragments() throws {
        let clock = Shared<UInt64>(1_000_000_000)
        var configuration = NATConfiguration(slot: 0)
        configuration.restrict = true
        configuration.dnsServers = []
        let nat = try NATAttachment(configuration: configuration, clock: { clock.value })
        defer { nat.close() }
        let port = FramePort()
        port.attach(nat)
        func send(_ packet: [UInt8]) { port.send(Self.frame(packet)) }
        // One datagram that never ends: 1000 fragments of 8 bytes.
        for index in 0..<1000 {
            send(
                IPv4Packet.build(
                    source: natGuestIP, destination: natGateway, proto: 17, payload: [UInt8](repeating: 1, count: 8),
                    identification: 1, moreFragments: true, fragmentOffset: index * 8))
        }
        #expect(nat.counter("drop_fragment_too_many") >= 1)
        // Many datagrams at once: the table holds 16.
        for identification in UInt16(100)..<UInt16(200) {
            send(
                IPv4Packet.build(
                    source: natGuestIP, destination: natGateway, proto: 17, payload: [UInt8](repeating: 1, count: 8),
                    identification: identification, moreFragments: true))
        }
        #expect(
            nat.counter("drop_fragment_table_full") == 100 - 16 + 1 || nat.counter("drop_fragment_table_full") >= 84)
        #expect(nat.runtime.withEngine { $0.reassembly.entries.count } <= 16)
        // A fragment that would end past 65535 bytes.
        send(
            IPv4Packet.build(
                source: natGuestIP, destination: natGateway, proto: 17, payload: [UInt8](repeating: 1, count: 64),
                identification: 9, fragmentOffset: 65_520))
        #expect(nat.counter("drop_fragment_too_large") == 1)
        // Everything unfinished goes after the reassembly timeout.
        clock.withLock { $0 += 16_000_000_000 }
        nat.runtime.runTimers()
        #expect(nat.runtime.withEngine { $0.reassembly.entries.count } == 0)
        #expect(nat.counter("drop_fragment_timeout") >= 15)
    }

    @Test("20,000 mutated frames: no crash, no host traffic, every frame accounted for")
    func mutations() throws {
        let bench = try Self.sealedBench()
        let seeds: [[UInt8]] = [
            Self.frame(guestPacket(to: natGateway, proto: 1, payload: echoRequest(identifier: 1, sequence: 1))),
            Self.frame(
                guestUDP(
                    from: 68, to: IPv4Endpoint(.broadcast, 67),
                    payload: NATAddressingTests.dhcpMessage(
                        type: DHCPMessageType.discover))),
            Self.frame(
                guestTCP(
                    from: 1, to: IPv4Endpoint(natGateway, 80), sequence: 1, flags: .syn,
                    options: [2, 4, 5, 0xB4, 1, 3, 3, 7])),
            Self.frame(guestUDP(from: 5, to: IPv4Endpoint(natDNS, 53), payload: [1, 2, 3, 4, 5, 6, 7, 8])),
            Self.fragments(
                of: guestUDP(from: 5, to: IPv4Endpoint(natGateway, 9), payload: [UInt8](repeating: 1, count: 100)),
                size: 48
            ).map { Self.frame($0) }[0],
            ethernetFrame(
                to: .broadcast, from: natGuestMAC, type: 0x0806,
                payload: [0, 1, 8, 0, 6, 4, 0, 1] + natGuestMAC.bytes + natGuestIP.bytes + [0, 0, 0, 0, 0, 0]
                    + natGateway.bytes),
        ]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            var frame = seeds[round % seeds.count]
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    let index = Int.random(in: 0..<frame.count, using: &generator)
                    frame[index] ^= UInt8.random(in: 1...255, using: &generator)
                }
            case 1: frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &generator)))
            case 2: frame += (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255) }
            default:
                let index = Int.random(in: 14..<max(15, min(frame.count, 60)), using: &generator)
                if index < frame.count { frame[index] = [0, 0xFF, 0x7F, 0x80][round % 4] }
            }
            bench.port.send(frame)
            if round % 1000 == 0 { _ = bench.port.drain() }
        }
        #expect(bench.counter("frames_in") == 20_000)
        #expect(bench.nat.flowCounts.tcp == 0 && bench.nat.flowCounts.udp == 0 && bench.nat.flowCounts.icmp == 0)
    }

    @Test("5,000 random segments into live connections: no crash, bounded state, the host side stays sane")
    func tcpStateFuzz() throws {
        let listener = LoopbackTCPListener()
        let server = LoopbackUDPServer()
        defer { server.stop() }
        var configuration = loopbackNATConfiguration()
        configuration.timeouts.tcpRetransmit = 0.01
        let bench = try NATBench(configuration)
        let remote = IPv4Endpoint(natGateway, listener.port)
        var generator = SystemRandomNumberGenerator()
        var accepted: [Int32] = []
        defer { for fd in accepted { close(fd) } }
        var known: [UInt32] = [0, 1, 0xFFFF_FFFF]
        for round in 0..<5000 {
            let port = UInt16(30_000 + Int.random(in: 0..<8, using: &generator))
            let flags = UInt8.random(in: 0...0x3F, using: &generator)
            let sequence = known.randomElement(using: &generator)! &+ UInt32.random(in: 0...3, using: &generator)
            let acknowledgment =
                known.randomElement(using: &generator)! &+ UInt32.random(in: 0...2000, using: &generator)
            let options: [UInt8] = [
                [], [2, 4, 0, 0], [3, 3, 200], [1, 1, 1, 1], [2, 4, 0xFF, 0xFF, 3, 3, 14],
                [8, 10] + [UInt8](repeating: 0, count: 8),
            ].randomElement(using: &generator)!
            let payload = [UInt8](repeating: 0x55, count: [0, 1, 100, 1460, 9000].randomElement(using: &generator)!)
            bench.sendIP(
                guestTCP(
                    from: port, to: remote, sequence: sequence, acknowledgment: acknowledgment,
                    flags: TCPFlags(rawValue: flags),
                    window: UInt16.random(in: 0...0xFFFF, using: &generator), options: options, payload: payload))
            for packet in bench.queuedPackets() {
                if let segment = TCPSegment(packet.payload) { known.append(segment.sequence &+ 1) }
            }
            if known.count > 64 { known.removeFirst(known.count - 64) }
            if round % 50 == 0 {
                let fd = listener.accept(timeout: 0)
                if fd >= 0 {
                    accepted.append(fd)
                    _ = Glibc.send(fd, "x", 1, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                }
                if accepted.count > 4, let first = accepted.first {
                    close(first)
                    accepted.removeFirst()
                }
            }
        }
        #expect(bench.nat.flowCounts.tcp <= 8)
        let held = bench.nat.runtime.withEngine { engine in
            engine.tcpFlows.values.map { $0.buffered + $0.pendingCount }.reduce(0, +)
        }
        #expect(held <= 8 * (NATLimits().tcpBufferPerFlow + NATLimits().tcpGuestSlackPerFlow))
    }

    @Test("every counter has a distinct snake_case name")
    func counterNames() throws {
        let bench = try Self.sealedBench()
        let names = bench.nat.counters.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.first?.isLowercase == true })
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" || ("0"..."9").contains($0) } })
        #expect(names.contains("drop_ip_malformed") && names.contains("drop_ttl_exceeded"))
        #expect(names.contains("drop_ipv6_malformed") && names.contains("ndp_router_advertisements"))
    }
}
