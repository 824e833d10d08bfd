import NICCards
import NICCore

/// Datapath figures through the harness: a card, guest RAM, descriptor rings driven as a guest driver drives them,
/// a null sink behind transmit and a frame source in front of receive. Meaningful in release builds only.
public enum Benchmark {
    /// One measured configuration.
    public struct Result: Hashable, Sendable {
        public var card: CardModel
        /// `tx` or `rx`.
        public var direction: String
        public var frameBytes: Int
        /// Descriptors handed over per doorbell (transmit) or frames delivered per service call (receive).
        public var batch: Int
        public var framesPerSecond: Double
        /// The ring format where a card has more than one (`split` or `packed` for virtio), else empty.
        public var variant = ""
        /// The card and variant as the table names them: `virtio`, `virtio-packed`.
        public var label: String {
            variant.isEmpty || variant == "split" ? card.rawValue : "\(card.rawValue)-\(variant)"
        }
        public var gbps: Double { framesPerSecond * Double(frameBytes) * 8 / 1e9 }

        /// The result as one JSON object.
        public var json: String {
            "{\"card\":\"\(card.rawValue)\",\"direction\":\"\(direction)\",\"frameBytes\":\(frameBytes),"
                + "\"batch\":\(batch),\"framesPerSecond\":\(Int(framesPerSecond)),\"gbps\":\(rounded(gbps))"
                + (variant.isEmpty ? "}" : ",\"ring\":\"\(variant)\"}")
        }
    }

    /// An attachment that counts frames and drops them: the transmit side's sink.
    final class NullSink: NetworkAttachment, @unchecked Sendable {
        var frames = 0
        func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) { frames += 1 }
        func didAttach(_ port: FramePort) { port.setCarrier(true) }
    }

    /// Frame sizes measured (9014 only on the cards with jumbo frames).
    public static func frameSizes(_ model: CardModel) -> [Int] {
        model.supportsJumboFrames ? [64, 1514, 9014] : [64, 1514]
    }
    /// The ring formats measured: split and packed for virtio, the one ring of every other card.
    public static func variants(_ model: CardModel) -> [String] { model == .virtio ? ["split", "packed"] : [""] }
    /// Batch sizes measured.
    public static let batches = [1, 256]

    /// Measures every configuration for every implemented card, spending about `seconds` on each.
    /// `directions` and `sizes`, when given, keep only those rows.
    public static func run(
        seconds: Double = 0.25, models: [CardModel] = CardModel.implemented, directions: [String] = ["tx", "rx"],
        sizes: [Int]? = nil
    ) throws(HarnessError) -> [Result] {
        var results: [Result] = []
        for model in models {
            for variant in variants(model) {
                for direction in directions {
                    for size in frameSizes(model) where sizes?.contains(size) ?? true {
                        for batch in batches {
                            let ring = RingChoice(model: model, variant: variant, frameBytes: size)
                            let rate =
                                direction == "tx"
                                ? try transmitRate(ring, batch: batch, seconds: seconds)
                                : try receiveRate(ring, batch: batch, seconds: seconds)
                            results.append(
                                Result(
                                    card: model, direction: direction, frameBytes: size, batch: batch,
                                    framesPerSecond: rate, variant: variant))
                        }
                    }
                }
            }
        }
        return results
    }

    /// memcpy bandwidth of this machine in GB/s between two 32 MiB buffers, the yardstick for the figures above.
    ///
    /// The source holds a pattern, not one repeated byte: copying from a buffer the compiler knows is all ones became
    /// a `memset`, which runs at about 2.5 times memcpy's speed on this kind of machine (until November 2026 the
    /// column was measured against that).
    public static func memcpyBandwidth(seconds: Double = 0.25) -> Double {
        let size = 32 << 20
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        for index in 0..<size { source[index] = UInt8(truncatingIfNeeded: index &* 131 &+ index >> 12) }
        destination.initializeMemory(as: UInt8.self, repeating: 0)
        var copied = 0
        let start = ContinuousClock.now
        var elapsed = 0.0
        repeat {
            destination.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: size)
            copied += size
            elapsed = (ContinuousClock.now - start).seconds
        } while elapsed < seconds
        return Double(copied) / elapsed / 1e9
    }

    static func transmitRate(_ choice: RingChoice, batch: Int, seconds: Double) throws(HarnessError) -> Double {
        let frameBytes = choice.frameBytes
        let rings = try makeBenchmarkRings(choice)
        let sink = NullSink()
        let card = rings.harness.card
        card.port.attach(sink)
        card.service()
        let frame = Scenario.broadcast(from: card.macAddress) + [UInt8](repeating: 0x5A, count: max(0, frameBytes - 60))
        try rings.prepareTransmit(Array(frame.prefix(frameBytes)))
        var sent = 0
        let start = ContinuousClock.now
        var elapsed = 0.0
        rings.harness.ram.withUnsafeBytes { memory in
            repeat {
                for _ in 0..<64 {
                    rings.transmit(batch, memory: memory)
                    sent += batch
                }
                elapsed = (ContinuousClock.now - start).seconds
            } while elapsed < seconds
        }
        guard sink.frames == sent else {
            throw HarnessError("transmit benchmark: \(sent) handed over, \(sink.frames) transmitted")
        }
        return Double(sent) / elapsed
    }

    /// The card's `rx_frames` counter: frames it placed in guest memory.
    private static func receivedFrames(_ card: any NetworkCard) -> UInt64 {
        card.counters.first { $0.name == "rx_frames" }?.value ?? 0
    }

    static func receiveRate(_ choice: RingChoice, batch: Int, seconds: Double) throws(HarnessError) -> Double {
        let rings = try makeBenchmarkRings(choice)
        let card = rings.harness.card
        let frame = Scenario.unicast(to: card.macAddress, length: choice.frameBytes)
        var received = 0
        let before = receivedFrames(card)
        let start = ContinuousClock.now
        var elapsed = 0.0
        rings.harness.ram.withUnsafeBytes { memory in
            repeat {
                for _ in 0..<64 {
                    for _ in 0..<batch { card.port.deliver(frame) }
                    card.service()
                    rings.recycleReceive(batch, memory: memory)
                    received += batch
                }
                elapsed = (ContinuousClock.now - start).seconds
            } while elapsed < seconds
        }
        let accepted = receivedFrames(card) &- before
        guard accepted == UInt64(received) else {
            throw HarnessError("receive benchmark: \(received) delivered, \(accepted) received")
        }
        return Double(received) / elapsed
    }
}

func rounded(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return String(scaled)
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
