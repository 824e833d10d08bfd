import NICCards
import NICCore
import NICTrace
import Testing

@Suite("Trace format v1: parsing and writing")
struct TraceParserTests {
    static let everyOperation = """
        vnic-trace 1
        device am79c973 mac=52:54:00:12:34:56   # a comment
        ram 1M
        cfg-write 0x4 2 0x7
        cfg-read 0x0 4 = 0x20001022
        cfg-read 0x6 2 & 0x10 = 0x0
        io-write 0 0x12 2 0x58
        io-read 0 0x12 2 = 0x58
        mmio-write 1 0x12 2 0x0
        mmio-read 1 0x10 2
        mem-write 0x10000 00112233aabb
        mem-fill 0x20000 4096 0x0
        mem-expect 0x10000 00112233
        rx 525400123456ffffffffffff0806
        tx-expect ffffffffffff525400123456
        tx-count = 0
        irq = 0
        msix 3 = 0
        clock 200us
        link down
        link up

        """

    @Test func parsesEveryOperation() throws {
        let trace = try TraceParser.parse(Self.everyOperation)
        #expect(trace.lines.count == 20)
        #expect(trace.lines[0].operation == .device(.am79c973, mac: MACAddress("52:54:00:12:34:56")!))
        #expect(trace.lines[0].comment == "a comment")
        #expect(trace.lines[0].number == 2)
        #expect(trace.lines[1].operation == .ram(bytes: 1 << 20))
        #expect(trace.lines[3].operation == .configRead(offset: 0, width: 4, expect: .equals(0x2000_1022)))
        #expect(trace.lines[4].operation == .configRead(offset: 6, width: 2, expect: .masked(mask: 0x10, value: 0)))
        #expect(trace.lines[7].operation == .barWrite(.memory, bar: 1, offset: 0x12, width: 2, value: 0))
        #expect(trace.lines[8].operation == .barRead(.memory, bar: 1, offset: 0x10, width: 2, expect: .none))
        #expect(trace.lines[10].operation == .memoryFill(address: 0x20000, count: 4096, byte: 0))
        #expect(trace.lines[16].operation == .msix(vector: 3, count: 0))
        #expect(trace.lines[17].operation == .clock(nanoseconds: 200_000))
        #expect(trace.lines[18].operation == .link(up: false))
    }

    @Test func writtenTextParsesBackToTheSameTrace() throws {
        let trace = try TraceParser.parse(Self.everyOperation)
        let again = try TraceParser.parse(trace.text)
        #expect(again.lines.map(\.operation) == trace.lines.map(\.operation))
        #expect(again.lines.map(\.comment) == trace.lines.map(\.comment))
    }

    @Test(arguments: [
        ("", 1, "header"),
        ("vnic-trace 2\n", 1, "version"),
        ("vnic-trace 1\ndevice e1000 mac=52:54:00:12:34:56\n", 2, "unknown device"),
        ("vnic-trace 1\n\ncfg-write 0x100 2 0x7\n", 3, "past 0xff"),
        ("vnic-trace 1\ncfg-write 0x4 3 0x7\n", 2, "width"),
        ("vnic-trace 1\nio-write 0 0x10 2 0x12345\n", 2, "does not fit"),
        ("vnic-trace 1\nio-read 0 0x10 2 == 4\n", 2, "expected '= VALUE'"),
        ("vnic-trace 1\nmem-write 0x10 abc\n", 2, "hex"),
        ("vnic-trace 1\nclock 5\n", 2, "duration"),
        ("vnic-trace 1\nclock 61s\n", 2, "60s"),
        ("vnic-trace 1\nram 2G\n", 2, "RAM size"),
        ("vnic-trace 1\nirq = 2\n", 2, "irq"),
        ("vnic-trace 1\nbogus 1 2\n", 2, "unknown operation"),
        ("vnic-trace 1\nio-read 6 0x0 2\n", 2, "BAR"),
        ("vnic-trace 1\nlink sideways\n", 2, "link"),
        ("vnic-trace 1\ndevice am79c973 mac=52:54:00:12:34:56 queues=2\n", 2, "am79c973 offers 1 to 1"),
        ("vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 queues=17\n", 2, "1 to 16 queue pairs"),
        ("vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 pairs=2\n", 2, "unknown card option 'pairs'"),
        ("vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 mtu=67\n", 2, "outside 68...65535"),
        ("vnic-trace 1\ndevice 82540em mac=52:54:00:12:34:56 mtu=9000\n", 2, "no MTU setting"),
    ])
    func malformedLinesNameTheLine(text: String, line: Int, message: String) {
        #expect {
            try TraceParser.parse(text)
        } throws: { error in
            guard case TraceFailure.malformed(let number, let text) = error else { return false }
            return number == line && text.contains(message)
        }
    }

    @Test func deviceLineCarriesQueuePairs() throws {
        let text =
            "vnic-trace 1\ndevice virtio mac=52:54:00:12:34:56 queues=4 mtu=9000\ndevice virtio mac=52:54:00:12:34:56\n"
        let trace = try TraceParser.parse(text)
        let mac = MACAddress("52:54:00:12:34:56")!
        #expect(trace.lines[0].operation == .device(.virtio, mac: mac, options: CardOptions(queuePairs: 4, mtu: 9000)))
        #expect(trace.lines[1].operation == .device(.virtio, mac: mac, options: CardOptions()))
        #expect(trace.lines[0].operation.text == "device virtio mac=52:54:00:12:34:56 queues=4 mtu=9000")
        #expect(trace.lines[1].operation.text == "device virtio mac=52:54:00:12:34:56")
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xAB, 0xFF]
        #expect(Hex.encode(bytes) == "00017f80abff")
        #expect(Hex.decode("00017F80abFF") == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }
}
