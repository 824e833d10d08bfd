import Foundation
import Glibc
import NICCore
import Testing

@testable import NetBackend

@Suite("NAT: ICMP error rate limit and DNS resolver timeouts")
struct NATRateLimitTests {
    @Test("ICMP errors to the guest pass a token bucket: a burst, then the rate; the rest are counted, not sent")
    func icmpErrorRateLimit() throws {
        let clock = Shared<UInt64>(5_000_000_000)
        var configuration = loopbackNATConfiguration()
        configuration.limits.icmpErrorsPerSecond = 10
        configuration.limits.icmpErrorBurst = 5
        let nat = try NATAttachment(configuration: configuration, clock: { clock.value })
        defer { nat.close() }
        let port = FramePort(queueCapacity: 256)
        port.attach(nat)
        defer { port.detach() }
        func sendExpiring(_ count: Int) -> Int {
            for sequence in 0..<count {
                let packet = guestPacket(
                    to: IPv4Address(192, 0, 2, 1), proto: 1,
                    payload: echoRequest(identifier: 1, sequence: UInt16(sequence)), ttl: 1)
                port.send(
                    ethernetFrame(
                        to: configuration.gatewayMAC, from: natGuestMAC, type: EtherType.ipv4, payload: packet))
            }
            return port.drain().filter { frame in
                (try? IPv4Packet(parsing: frame, at: 14)).map { $0.proto == 1 && $0.payload.byte(at: 0) == 11 } ?? false
            }.count
        }
        #expect(sendExpiring(20) == 5)
        #expect(nat.counter("icmp_errors_rate_limited") == 15)
        #expect(nat.counter("drop_ttl_exceeded") == 20)
        // 300 ms earn three tokens.
        clock.withLock { $0 += 300_000_000 }
        #expect(sendExpiring(10) == 3)
        // A long pause fills the bucket, never past its size.
        clock.withLock { $0 += 3_600_000_000_000 }
        #expect(sendExpiring(10) == 5)
        #expect(nat.counter("icmp_errors_sent") == 13)
        #expect(nat.counter("icmp_errors_rate_limited") == 27)
    }

    @Test("the token bucket never traps: clocks that jump either way, huge rates and bursts, rate 0 for no limit")
    func tokenBucketEdges() {
        var bucket = NATTokenBucket(burst: Int.max, now: .max)
        var taken = [bucket.take(now: 0, rate: Int.max, burst: Int.max)]
        taken.append(bucket.take(now: .max, rate: Int.max, burst: Int.max))
        #expect(taken == [true, true])
        var tiny = NATTokenBucket(burst: 0, now: 0)
        taken = [tiny.take(now: 0, rate: 1, burst: 0), tiny.take(now: 1, rate: 1, burst: 0)]
        taken.append(tiny.take(now: 1_000_000_001, rate: 1, burst: 0))
        taken.append(tiny.take(now: 0, rate: 0, burst: 0))
        #expect(taken == [true, false, true, true])
    }

    @Test("a resolver that stays silent is left after the retry time: the query goes to the next one, counted")
    func dnsSilentResolver() throws {
        // Bound and never read: it takes the query and says nothing (no ICMP port unreachable either).
        let silent = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(silent) }
        _ = HostSocket.bind(silent, to: IPv4Endpoint(.loopback, 0))
        let silentPort = try #require(HostSocket.localEndpoint(silent)?.port)
        let resolver = LoopbackUDPServer()
        defer { resolver.stop() }
        var configuration = loopbackNATConfiguration(
            dns: [IPv4Endpoint(.loopback, silentPort), IPv4Endpoint(.loopback, resolver.port)])
        configuration.timeouts.dnsRetry = 0.2
        let bench = try NATBench(configuration)
        let query: [UInt8] = [0x56, 0x78, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        bench.sendIP(guestUDP(from: 33_335, to: IPv4Endpoint(natDNS, 53), payload: query))
        #expect(bench.receivePackets(timeout: 0.1) { $0.proto == 17 }.isEmpty)
        let reply = try #require(bench.receivePackets(timeout: 3) { $0.proto == 17 }.first)
        #expect(reply.source == natDNS && Array(reply.payload[8...]) == query)
        #expect(bench.counter("dns_resolver_timeouts") == 1)
        #expect(bench.counter("dns_failovers") == 1)
        #expect(resolver.received.value == [query])
    }

    @Test("when the last resolver stays silent too, nothing more is tried: the retries are bounded by the list")
    func dnsAllSilent() throws {
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        var resolvers: [IPv4Endpoint] = []
        for _ in 0..<2 {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            sockets.append(fd)
            _ = HostSocket.bind(fd, to: IPv4Endpoint(.loopback, 0))
            resolvers.append(IPv4Endpoint(.loopback, HostSocket.localEndpoint(fd)?.port ?? 9))
        }
        var configuration = loopbackNATConfiguration(dns: resolvers)
        configuration.timeouts.dnsRetry = 0.1
        let bench = try NATBench(configuration)
        bench.sendIP(guestUDP(from: 33_336, to: IPv4Endpoint(natDNS, 53), payload: [1, 2, 3, 4]))
        usleep(800_000)
        #expect(bench.counter("dns_resolver_timeouts") == 1)
        #expect(bench.counter("dns_failovers") == 1)
        #expect(bench.nat.flowCounts.udp == 1)
    }
}
