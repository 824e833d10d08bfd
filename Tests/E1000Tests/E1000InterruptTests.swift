import E1000
import NICCore
import Testing

@Suite("e1000 interrupts: causes, masking, moderation")
struct E1000InterruptTests {
    @Test(arguments: E1000Chip.allCases)
    func causesAndMasking(chip: E1000Chip) throws {
        let bench = try E1000Bench(chip)
        _ = bench.read(0xC0)
        for cause: UInt32 in [0x1, 0x2, 0x4, 0x8, 0x10, 0x40, 0x80, 0x200] {
            bench.write(0xC8, cause)
            #expect(!bench.interrupt, "masked cause \(cause)")
            bench.write(0xD0, cause)
            #expect(bench.read(0xD0) == cause)
            #expect(bench.interrupt, "unmasked cause \(cause)")
            bench.write(0xD8, cause)
            #expect(!bench.interrupt, "IMC masks \(cause)")
            #expect(bench.read(0xD8) == 0, "IMC reads 0")
            #expect(bench.read(0xC8) == 0, "ICS reads 0")
            bench.write(0xD0, cause)
            #expect(bench.interrupt)
            #expect(bench.read(0xC0) == cause, "ICR shows the cause")
            #expect(!bench.interrupt, "reading ICR clears it")
            #expect(bench.read(0xC0) == 0)
            bench.write(0xD8, 0xFFFF_FFFF)
        }
    }

    @Test func writingOneClearsICRBits() throws {
        let bench = try E1000Bench(.i82540EM)
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x90)
        bench.write(0xC8, 0x90)
        bench.write(0xC0, 0x80)
        #expect(bench.interrupt)
        bench.write(0xC0, 0x10)
        #expect(!bench.interrupt)
        // A byte write to IMS unmasks only the bits written.
        bench.write(0xC8, 0x200)
        bench.write(0xD1, 0x02, width: 1)
        #expect(bench.read(0xD0) == 0x290)
        #expect(bench.interrupt)
    }

    @Test func mdicCompletionRaisesMDAC() throws {
        let bench = try E1000Bench(.i82540EM)
        _ = bench.read(0xC0)
        bench.write(0xD0, 0x200)
        bench.write(0x20, 2 << 16 | 1 << 21 | 2 << 26)
        #expect(!bench.interrupt, "no MDAC without the I bit")
        bench.write(0x20, 2 << 16 | 1 << 21 | 2 << 26 | 1 << 29)
        #expect(bench.interrupt)
        #expect(bench.read(0xC0) == 0x200)
    }

    @Test func interruptThrottling() throws {
        let bench = try E1000Bench(.i82545EM)
        _ = bench.read(0xC0)
        bench.write(0xC4, 1000)  // 256 µs
        bench.write(0xD0, 0x1)
        bench.write(0xC8, 0x1)
        #expect(bench.interrupt, "the first interrupt is not delayed")
        _ = bench.read(0xC0)
        bench.write(0xC8, 0x1)
        #expect(!bench.interrupt, "held back by ITR")
        bench.clock.advance(by: .microseconds(200))
        #expect(!bench.interrupt)
        bench.clock.advance(by: .microseconds(56))
        #expect(bench.interrupt, "after 1000 x 256 ns")
        _ = bench.read(0xC0)
        bench.write(0xC4, 0)
        bench.write(0xC8, 0x1)
        #expect(bench.interrupt, "ITR 0 does not moderate")
    }
}
