import Foundation
import NICCore
import NetBackend
import Testing

@Suite struct InternalNetworkConcurrencyTests {
    /// Runs `body(i)` on `count` threads at once; `false` if they did not all finish within `timeout`.
    private func onThreads(
        _ count: Int, timeout: TimeInterval = 60, _ body: @escaping @Sendable (Int) -> Void
    ) -> Bool {
        let done = DispatchSemaphore(value: 0)
        for i in 0..<count {
            let thread = Thread {
                body(i)
                done.signal()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        let deadline = DispatchTime.now() + timeout
        return (0..<count).allSatisfy { _ in done.wait(timeout: deadline) == .success }
    }

    @Test(.timeLimit(.minutes(2)))
    func concurrentTransmittersAreAllAccountedFor() throws {
        let senders = 4
        let broadcasts = 1500
        let unicasts = 1500
        let network = InternalNetwork(name: "busy")
        // Port 3 has a small queue, so drops happen while others deliver.
        let ports = (0..<senders).map { FramePort(queueCapacity: $0 == 3 ? 8 : 1 << 16) }
        for port in ports { port.attach(network) }
        for (i, port) in ports.enumerated() { port.send(frame(to: .broadcast, from: mac(UInt8(i + 1)))) }
        for port in ports { _ = port.drain() }
        let before = network.statistics

        // Each thread owns one port, as a card's thread does: it transmits and drains its own queue.
        let received = Shared([Int](repeating: 0, count: senders))
        let finished = onThreads(senders) { i in
            let port = ports[i]
            let peer = mac(UInt8((i + 1) % senders + 1))
            var drained = 0
            for n in 0..<(broadcasts + unicasts) {
                let destination = n % 2 == 0 ? MACAddress.broadcast : peer
                port.send(frame(to: destination, from: mac(UInt8(i + 1)), tag: UInt32(i << 24 | n)))
                if n % 64 == 0 { drained += port.drain().count }
            }
            drained += port.drain().count
            received.withLock { $0[i] = drained }
        }
        try #require(finished, "transmitter threads did not finish in time")

        let stats = network.statistics
        let frames = UInt64(senders * (broadcasts + unicasts))
        #expect(stats.framesIn - before.framesIn == frames)
        #expect(stats.framesFlooded - before.framesFlooded == UInt64(senders * broadcasts))
        #expect(stats.framesSwitched - before.framesSwitched == UInt64(senders * unicasts))
        let copies = UInt64(senders * (broadcasts * (senders - 1) + unicasts))
        let delivered = stats.framesDelivered - before.framesDelivered
        let refused = stats.droppedQueueFull - before.droppedQueueFull
        #expect(delivered + refused == copies)

        // Every port was offered the other three senders' broadcasts and one sender's unicasts.
        let offered = broadcasts * (senders - 1) + unicasts
        let counts = received.value
        for (i, port) in ports.enumerated() {
            let remaining = port.drain().count
            #expect(counts[i] + remaining + Int(port.inboundDropped) == offered, "port \(i)")
        }
        #expect(UInt64(ports.reduce(0) { $0 + Int($1.inboundDropped) }) == refused)
        #expect(ports[3].inboundDropped > 0, "the small queue overflowed")
    }

    @Test(.timeLimit(.minutes(1)))
    func onWorkMayReenterTheNetwork() throws {
        let network = InternalNetwork(name: "reentrant")
        let a = FramePort(), b = FramePort()
        a.attach(network)
        b.attach(network)
        a.send(frame(to: .broadcast, from: mac(1)))
        _ = b.drain()
        // B answers from inside its wake-up callback, which runs inside the network's delivery to B.
        let replies = Shared(0)
        b.onWork = {
            let first = replies.withLock { count -> Bool in
                count += 1
                return count == 1
            }
            if first { b.send(frame(to: mac(1), from: mac(2), tag: 99)) }
        }
        let finished = onThreads(1, timeout: 20) { _ in a.send(frame(to: mac(2), from: mac(1), tag: 1)) }
        try #require(finished, "delivery deadlocked")
        #expect(b.drain().map(tag(of:)) == [1])
        #expect(a.drain().map(tag(of:)) == [99])
        b.onWork = nil
    }
}
