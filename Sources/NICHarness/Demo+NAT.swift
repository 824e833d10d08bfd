import Glibc
import NICCore
import NetBackend

extension Demo {
    /// The NAT part of the demo: a card on a NAT of its own (VirtualBox's default attachment) gets a DHCP lease,
    /// finds the gateway, and fetches a file from an HTTP server on the host's loopback through the gateway address.
    public static func runNAT(model: CardModel = .am79c973) -> Report {
        let body = Array((0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) })
        var rows: [Row] = []
        func row(_ step: String, _ passed: Bool, _ detail: String) {
            rows.append(Row(step: step, outcomes: [Outcome(passed: passed, detail: detail)]))
        }
        func report() -> Report { Report(cards: [model], network: "NAT", rows: rows) }

        let server: LoopbackHTTPServer
        do { server = try LoopbackHTTPServer(body: body) } catch {
            row("HTTP server on 127.0.0.1", false, "\(error)")
            return report()
        }
        defer { server.stop() }
        var configuration = NATConfiguration(slot: 0)
        configuration.localhostReachable = true
        configuration.restrict = true  // only the gateway (host loopback) and the DNS proxy
        let nat: NATAttachment
        do throws(NATError) { nat = try NATAttachment(configuration: configuration) } catch {
            row("attach to NAT", false, error.description)
            return report()
        }
        defer { nat.close() }
        do throws(HarnessError) {
            let harness = try CardHarness(model: model, macAddress: MACAddress("52:54:00:12:34:56")!)
            harness.card.port.attach(nat)
            harness.card.service()
            row("attach to NAT 10.0.2.0/24", harness.card.linkUp, "link up")
            let driver = try model.driver(for: harness)
            driver.enableDevice()
            _ = try driver.identify()
            try driver.start(jumbo: false)
            let guest = DemoGuest(driver: driver)
            let lease = try guest.dhcp()
            row("DHCP lease", lease == [10, 0, 2, 15], lease.map(String.init).joined(separator: "."))
            let gatewayMAC = try guest.resolveGateway()
            row("ARP for the gateway 10.0.2.2", true, "\(gatewayMAC)")
            let fetched = try guest.httpGet(port: server.port, path: "/file")
            row(
                "fetch 256 KiB from 127.0.0.1", fetched == body,
                fetched == body ? "\(fetched.count) bytes intact" : "\(fetched.count) bytes, content differs")
        } catch {
            row("NAT session", false, error.message)
        }
        return report()
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
