import Glibc
import NICCards
import NICCore
import NetBackend

extension Demo {
    /// The NAT part of the demo: each card on a NAT of its own (VirtualBox's default attachment; card slot n gets
    /// 10.0.(n+2).0/24) gets a DHCP lease, finds the gateway, and fetches a file from an HTTP server on the host's
    /// loopback through the gateway address.
    public static func runNAT(models: [CardModel] = [.am79c973, .e82540em, .virtio]) -> Report {
        let body = Array((0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) })
        let server: LoopbackHTTPServer
        do { server = try LoopbackHTTPServer(body: body) } catch {
            let failed = models.map { _ in Outcome(passed: false, detail: "\(error)") }
            return Report(
                cards: models, network: "NAT", rows: [Row(step: "HTTP server on 127.0.0.1", outcomes: failed)])
        }
        defer { server.stop() }
        let columns = models.enumerated().map { slot, model in
            natSession(model: model, slot: slot, server: server, body: body)
        }
        let steps = columns.max { $0.count < $1.count }?.map(\.step) ?? []
        let rows = steps.indices.map { index in
            Row(
                step: steps[index],
                outcomes: columns.map { index < $0.count ? $0[index].outcome : Outcome(passed: false, detail: "-") })
        }
        return Report(cards: models, network: "NAT", rows: rows)
    }

    /// One card in NAT slot `slot`: the steps it went through and how each ended.
    private static func natSession(model: CardModel, slot: Int, server: LoopbackHTTPServer, body: [UInt8]) -> [(
        step: String, outcome: Outcome
    )] {
        var steps: [(step: String, outcome: Outcome)] = []
        func step(_ name: String, _ passed: Bool, _ detail: String) {
            steps.append((name, Outcome(passed: passed, detail: detail)))
        }
        var configuration = NATConfiguration(slot: slot)
        configuration.localhostReachable = true
        configuration.restrict = true  // only the gateway (host loopback) and the DNS proxy
        let nat: NATAttachment
        do throws(NATError) { nat = try NATAttachment(configuration: configuration) } catch {
            step("attach to NAT", false, error.description)
            return steps
        }
        defer { nat.close() }
        let network = [10, 0, UInt8(slot + 2)]
        do throws(HarnessError) {
            let harness = try CardHarness(
                model: model, macAddress: MACAddress(rawValue: 0x5254_0012_3456 + UInt64(slot)))
            harness.card.port.attach(nat)
            harness.card.service()
            step("attach to its own NAT", harness.card.linkUp, "10.0.\(slot + 2).0/24, link up")
            let driver = try model.driver(for: harness)
            driver.enableDevice()
            _ = try driver.identify()
            try driver.start(jumbo: false)
            let guest = DemoGuest(driver: driver)
            let lease = try guest.dhcp()
            step("DHCP lease", lease == network + [15], lease.map(String.init).joined(separator: "."))
            let gatewayMAC = try guest.resolveGateway()
            step("ARP for the gateway .2", true, "\(gatewayMAC)")
            let fetched = try guest.httpGet(port: server.port, path: "/file")
            step(
                "fetch 256 KiB from 127.0.0.1", fetched == body,
                fetched == body ? "\(fetched.count) bytes intact" : "\(fetched.count) bytes, content differs")
        } catch {
            step("NAT session", false, error.message)
        }
        return steps
    }
}

/// An HTTP/1.0 server on 127.0.0.1 (an ephemeral port) that answers every request with `body`, on its own thread,
/// for the demo. It serves one connection at a time and stops when told.
final class LoopbackHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let socket: Int32
    private let body: [UInt8]

    init(body: [UInt8]) throws(HarnessError) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else {
            close(fd)
            throw HarnessError("bind/listen on 127.0.0.1: errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        socket = fd
        self.body = body
        let response = Array("HTTP/1.0 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        let started = startThread {
            for _ in 0..<64 {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                var request = [UInt8](repeating: 0, count: 4096)
                _ = read(client, &request, request.count)
                var offset = 0
                while offset < response.count {
                    let written = response[offset...].withUnsafeBytes {
                        send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                    }
                    guard written > 0 else { break }
                    offset += written
                }
                close(client)
            }
        }
        guard started else {
            close(fd)
            throw HarnessError("no thread for the HTTP server")
        }
    }

    /// Stops accepting: the listening socket is shut down and closed.
    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }
}
