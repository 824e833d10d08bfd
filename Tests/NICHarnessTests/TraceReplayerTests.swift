import Foundation
import NICCards
import NICCore
import NICHarness
import NICTestSupport
import NICTrace
import Testing

@Suite("Trace replay")
struct TraceReplayerTests {
    static let probe = """
        vnic-trace 1
        device am79c970a mac=52:54:00:aa:bb:cc
        ram 64K
        cfg-read 0x0 4 = 0x20001022
        cfg-write 0x4 2 0x7
        io-read 0 0x14 2 = 0x0
        io-write 0 0x12 2 0x0
        io-read 0 0x10 2 = 0x4
        io-read 0 0x0 1 = 0x52
        io-read 0 0x5 1 = 0xcc
        irq = 0
        tx-count = 0

        """

    @Test func passingTraceSummarises() throws {
        let summary = try TraceReplayer.run(Self.probe)
        #expect(summary.model == .am79c970a)
        #expect(summary.operations == 9)
        #expect(summary.assertions == 7)
    }

    @Test func failedAssertionNamesLineExpectedAndActual() {
        let wrong = Self.probe.replacingOccurrences(of: "io-read 0 0x10 2 = 0x4", with: "io-read 0 0x10 2 = 0x5")
        #expect {
            try TraceReplayer.run(wrong)
        } throws: { error in
            guard case TraceFailure.assertion(let line, _, let expected, let actual) = error else { return false }
            return line == 8 && expected == "0x5" && actual == "0x4"
        }
    }

    @Test func operationBeforeDeviceIsMalformed() {
        #expect(throws: TraceFailure.malformed(line: 2, message: "no 'device' line before the first operation")) {
            try TraceReplayer.run("vnic-trace 1\nio-read 0 0x10 2\n")
        }
    }

    @Test func wrongAddressSpaceIsMalformed() {
        #expect {
            try TraceReplayer.run("vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56\nmmio-read 0 0x10 2\n")
        } throws: { error in
            guard case TraceFailure.malformed(let line, let message) = error else { return false }
            return line == 3 && message.contains("I/O BAR")
        }
    }

    @Test func everyModelIsImplemented() throws {
        #expect(CardModel.implemented == CardModel.allCases)
        let summary = try TraceReplayer.run("vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56\n")
        #expect(summary.model == .virtio)
    }

    @Test func memoryOutsideRAMIsMalformedNotACrash() {
        #expect {
            try TraceReplayer.run("vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56\nram 4K\nmem-write 0xfff 0011\n")
        } throws: { error in
            guard case TraceFailure.malformed(let line, _) = error else { return false }
            return line == 4
        }
    }

    @Test func recordedDriverSessionReplaysIdentically() throws {
        for scenario in Scenario.all {
            let trace = try scenario.record()
            let summary = try TraceReplayer.run(trace)
            #expect(summary.model == scenario.model)
            #expect(summary.assertions > 10, "\(scenario.name) asserts what the driver saw")
        }
    }

    @Test func replayBuildsTheCardWithItsOptions() throws {
        // Legacy I/O BAR0, device config at 20 (MSI-X off): MAC (6), status (2), max_virtqueue_pairs (2), mtu (2).
        let header = "vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 queues=3 mtu=9000\ncfg-write 0x4 2 0x1\n"
        let reads = "io-read 0 0x1c 2 = 0x3\nio-read 0 0x1e 2 = 0x2328\n"
        #expect(try TraceReplayer.run(TraceParser.parse(header + reads)).assertions == 2)
        #expect(throws: TraceFailure.self) {
            try TraceReplayer.run(TraceParser.parse(header + "io-read 0 0x1c 2 = 0x1\n"))
        }
        let harness = try CardHarness(model: .virtio, options: CardOptions(queuePairs: 3))
        #expect(TraceRecorder.attach(to: harness).text.contains("device virtio mac=52:54:00:12:34:56 queues=3\n"))
        #expect(throws: HarnessError.self) { try CardHarness(model: .e82540em, options: CardOptions(queuePairs: 2)) }
    }
}
