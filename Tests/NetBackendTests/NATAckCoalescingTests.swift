import Foundation
import Glibc
import NICCore
import NICTestSupport
import Testing

@testable import NetBackend

@Suite("NAT TCP: acknowledgments coalesced per burst of the guest's frames")
struct NATAckCoalescingTests {
    /// An open connection from the guest to a loopback server: the bench, the guest's side and the server's socket.
    static func connection() throws -> (NATBench, GuestConnection, Int32) {
        let listener = LoopbackTCPListener()
        let bench = try NATBench()
        let guest = GuestConnection(bench, to: IPv4Endpoint(natGateway, listener.port))
        _ = try #require(guest.open())
        let server = listener.accept()
        try #require(server >= 0)
        _ = bench.port.drain()
        return (bench, guest, server)
    }

    @Test("data segments in one burst get one acknowledgment at its end; a FIN in the burst is answered at once")
    func oneAckPerBurst() throws {
        let (bench, guest, server) = try Self.connection()
        defer { close(server) }
        var sent: [UInt8] = []
        bench.nat.runtime.guestBurst {
            for index in 0..<5 {
                let payload = [UInt8](repeating: UInt8(index), count: 1000)
                guest.send(flags: [.ack, .psh], payload: payload)
                guest.sequence &+= 1000
                sent += payload
            }
            // Nothing is acknowledged while the burst lasts.
            #expect(bench.port.queuedFrames == 0)
        }
        let acks = guest.segments(timeout: 0.3, until: { _ in false }).filter { $0.has(.ack) }
        #expect(acks.count == 1)
        #expect(acks.first?.acknowledgment == guest.sequence)
        #expect(receiveBytes(server, count: sent.count) == sent)
        // Outside a burst each segment is acknowledged as it comes, and a FIN inside one is not held back.
        guest.send(flags: [.ack, .psh], payload: [7])
        guest.sequence &+= 1
        #expect(guest.segments(until: { $0.acknowledgment == guest.sequence }).count == 1)
        bench.nat.runtime.guestBurst {
            guest.send(flags: [.ack, .fin], payload: [8])
            guest.sequence &+= 2
            #expect(bench.port.queuedFrames == 1)
        }
        #expect(bench.counter("drop_tcp_out_of_order") == 0)
    }

    @Test("a burst never leaves more than 64 KiB unacknowledged: past it the acknowledgment goes at once")
    func deferralLimit() throws {
        let (bench, guest, server) = try Self.connection()
        defer { close(server) }
        let start = guest.sequence
        bench.nat.runtime.guestBurst {
            for _ in 0..<70 {
                guest.send(flags: .ack, payload: [UInt8](repeating: 1, count: 1000))
                guest.sequence &+= 1000
            }
        }
        _ = receiveBytes(server, count: 70_000)
        let acks = guest.segments(timeout: 0.3, until: { _ in false }).map(\.acknowledgment)
        #expect(acks == [start &+ 66_000, start &+ 70_000])
    }
}
