import NICCards
import NICCore
import NICHarness
import NICTrace
import Testing

@Suite("Harness pieces: guest RAM, fuzz decoder, demo, benchmark")
struct HarnessTests {
    @Test func guestRAMFaultsOutsideAndLogsDMA() throws {
        let ram = try GuestRAM(size: 4096)
        ram.logging = true
        try ram.write(at: GuestAddress(4090), bytes: [1, 2, 3, 4, 5, 6])
        #expect(try ram.load(at: 4090, count: 6) == [1, 2, 3, 4, 5, 6])
        #expect(throws: DMAError.self) { try ram.write(at: GuestAddress(4091), bytes: [1, 2, 3, 4, 5, 6]) }
        #expect(throws: DMAError.self) { _ = try ram.readBytes(at: GuestAddress(UInt64.max), count: 2) }
        #expect(ram.faultCount == 2)
        #expect(ram.lastFault?.reason == .outsideRAM)
        #expect(ram.log == [GuestRAM.Access(address: GuestAddress(4090), length: 6, isWrite: true)])
        #expect(throws: HarnessError.self) { try ram.store([1], at: 4096) }
        #expect(throws: HarnessError.self) { try GuestRAM(size: 0) }
    }

    @Test func fuzzDecoderNeverTrapsAndItsTracesParse() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        for round in 0..<300 {
            let length = Int(generator.next() % 600)
            let input = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let trace = FuzzDecoder.decode(input)
            let reparsed = try TraceParser.parse(trace.text)
            #expect(reparsed.lines.map(\.operation) == trace.lines.map(\.operation), "round \(round)")
            FuzzDecoder.runOne(input)
        }
    }

    @Test(arguments: [CardModel.e82540em, .e82543gc, .e82545em])
    func fuzzBytecodeReachesTheIntelDataPath(model: CardModel) throws {
        let index = try #require(CardModel.implemented.firstIndex(of: model))
        var input: [UInt8] = [UInt8(index)]
        // Bring-up: 1024-byte rings (TDLEN 8 * 128), RCTL modes 0, TCTL plain, every cause unmasked.
        input += [10, 0x08, 0, 0, 0, 0, 0, 0xFF, 0xFF]
        // A legacy transmit descriptor at index 0: buffer 0x8000, 60 bytes, CMD = EOP | IFCS | RS.
        input += [11, 0x00, 0x00, 0x00, 0x80, 0x00, 60, 0, 0x0B, 0, 0, 0, 0]
        // TDT = 1.
        input += [12, 0, 1]
        let trace = FuzzDecoder.decode(input)
        let summary = try TraceReplayer.run(trace)
        #expect(summary.model == model)
        #expect(summary.transmitted == 1, "\(trace.text)")
    }

    /// Bring-up flags: legacy split (256 entries), modern split and modern packed (16 entries each).
    @Test(arguments: [UInt8(0x01), 0x40, 0x42])
    func fuzzBytecodeReachesTheVirtioDataPath(bringUp flags: UInt8) throws {
        let index = try #require(CardModel.implemented.firstIndex(of: .virtio))
        var input: [UInt8] = [UInt8(index)]
        // Bring-up with no extra features.
        input += [10, flags, 0, 0, 0, 0]
        // Transmit descriptor 0: buffer 0x8000, a 12-byte header and a 60-byte frame, no flags (packed: ID 0, AVAIL).
        input += [11, 0x01, 0, 0x00, 0x00, 0x80, 0x00, 72, 0, 0, 0, 0, 0]
        // Split: avail entry 0 and avail idx 1, then notify; packed: notify only.
        input += flags & 2 == 0 ? [12, 0x01, 0, 1, 0] : [12, 0x0D, 0, 0, 0]
        // A control command (RX, PROMISC on) through the control queue.
        input += [13, 0, 0, 1, 3, 1, 0, 0]
        let trace = FuzzDecoder.decode(input)
        let summary = try TraceReplayer.run(trace)
        #expect(summary.model == .virtio)
        #expect(summary.transmitted == 1, "\(trace.text)")
    }

    @Test func fuzzerTakesTraceTextToo() throws {
        let text = Array("vnic-trace 1\ndevice am79c970a mac=52:54:00:12:34:56\nio-read 0 0x14 2 = 0x0\n".utf8)
        let trace = try #require(FuzzDecoder.trace(for: text))
        #expect(trace.lines.count == 2)
        #expect(FuzzDecoder.trace(for: Array("vnic-trace 1\nnonsense\n".utf8)) == nil)
    }

    @Test func demoWorksForEveryImplementedCard() {
        let report = Demo.run()
        #expect(report.cards == CardModel.implemented)
        #expect(report.passed, "\(report.table)")
        #expect(report.rows.count >= 8)
    }

    @Test func demoCardsOnAUDPTunnelExchangeFramesAndJumboFrames() {
        let report = Demo.runUDPTunnel(models: [.e82545em, .virtio])
        #expect(report.passed, "\(report.table)")
        #expect(report.rows.contains { $0.step == "9014-byte jumbo broadcast" })
        #expect(report.rows.first?.step == "UDP tunnel over 127.0.0.1")
    }

    @Test(arguments: CardModel.implemented)
    func demoCardBehindNATGetsALeaseAndFetchesAFile(model: CardModel) {
        let report = Demo.runNAT(models: [model])
        #expect(report.passed, "\(report.table)")
        #expect(report.rows.map(\.step).last == "fetch 256 KiB from 127.0.0.1")
        #expect(report.rows.last?.outcomes.first?.detail == "262144 bytes intact")
    }

    @Test(arguments: CardModel.implemented)
    func benchmarkAccountsForEveryFrame(model: CardModel) throws {
        // Not a timing test: the figures are checked for being measured, and the benchmark itself checks that
        // every frame handed over was transmitted or received.
        let results = try Benchmark.run(seconds: 0.01, models: [model])
        #expect(
            results.count
                == 2 * Benchmark.frameSizes(model).count * Benchmark.batches.count * Benchmark.variants(model).count)
        #expect(results.allSatisfy { $0.framesPerSecond > 0 })
        #expect(
            results[0].json.hasPrefix(
                "{\"card\":\"\(model.rawValue)\",\"direction\":\"tx\",\"frameBytes\":64,\"batch\":1,"))
    }
}

/// SplitMix64: a small deterministic generator for reproducible test inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
