import Foundation
import NICCore
import NICTestSupport
import Testing

@Suite struct PcapTests {
    private func contents(of path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func pcapError(_ data: [UInt8]) -> PcapError? {
        do {
            _ = try PcapReader(data: data)
            return nil
        } catch {
            return error
        }
    }

    /// A file header in the given byte order and timestamp resolution, with link type 1.
    private func header(bigEndian: Bool, nanoseconds: Bool, snapshotLength: UInt32 = 65535) -> [UInt8] {
        let u32 = bigEndian ? bigEndian32 : littleEndian32
        let u16 = bigEndian ? bigEndian16 : littleEndian16
        return u32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4) + u16(2) + u16(4) + u32(0) + u32(0) + u32(snapshotLength)
            + u32(1)
    }

    @Test func roundTripWithNanosecondTimestamps() throws {
        let path = temporaryPath("roundtrip.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        let frames: [[UInt8]] = [
            Array(0..<60), [UInt8](repeating: 0xAB, count: 1514), Array(repeating: 0x42, count: 14),
        ]
        let stamps: [UInt64] = [1_700_000_000_123_456_789, 1_700_000_000_999_999_999, 1_700_000_001_000_000_001]
        for (frame, stamp) in zip(frames, stamps) { writer.write(frame, timestampNanoseconds: stamp) }
        writer.close()

        let bytes = try contents(of: path)
        #expect(Array(bytes[0..<4]) == [0x4D, 0x3C, 0xB2, 0xA1], "nanosecond magic, little-endian")
        #expect(Array(bytes[4..<8]) == [2, 0, 4, 0], "version 2.4")
        #expect(bytes.count == 24 + frames.reduce(0) { $0 + 16 + $1.count })

        let reader = try PcapReader(path: path)
        #expect(reader.linkType == PcapWriter.ethernetLinkType)
        #expect(reader.snapshotLength == UInt32(writer.snapshotLength))
        #expect(reader.records == zip(frames, stamps).map { PcapRecord(timestampNanoseconds: $1, bytes: $0) })
    }

    @Test func truncatesToSnapshotLength() throws {
        let path = temporaryPath("snap.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, snapshotLength: 100)
        #expect(writer.snapshotLength == 100)
        let long = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        writer.write(long, timestampNanoseconds: 5)
        writer.write(Array(long[..<100]), timestampNanoseconds: 6)
        writer.close()
        let reader = try PcapReader(path: path)
        #expect(reader.snapshotLength == 100)
        #expect(reader.records.count == 2)
        #expect(reader.records.first?.bytes == Array(long[..<100]))
        #expect(reader.records.first?.originalLength == 300)
        #expect(reader.records.last?.originalLength == 100)
    }

    @Test func tinySnapshotLengthIsRaisedToAnEthernetMinimum() throws {
        let path = temporaryPath("tiny.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, snapshotLength: 1)
        #expect(writer.snapshotLength == 64)
    }

    @Test func writesAfterCloseAreIgnored() throws {
        let path = temporaryPath("closed.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        writer.write([1, 2, 3], timestampNanoseconds: 1)
        writer.close()
        let size = try contents(of: path).count
        writer.write([4, 5, 6], timestampNanoseconds: 2)
        writer.close()
        #expect(try contents(of: path).count == size)
        #expect(size == 24 + 16 + 3)
    }

    @Test func readsBigEndianMicrosecondFile() throws {
        let record = bigEndian32(1000) + bigEndian32(250_000) + bigEndian32(4) + bigEndian32(60) + [1, 2, 3, 4]
        let second = bigEndian32(1001) + bigEndian32(999_999) + bigEndian32(0) + bigEndian32(0)
        let reader = try PcapReader(data: header(bigEndian: true, nanoseconds: false) + record + second)
        #expect(reader.linkType == 1)
        #expect(reader.snapshotLength == 65535)
        #expect(
            reader.records == [
                PcapRecord(timestampNanoseconds: 1_000_250_000_000, bytes: [1, 2, 3, 4], originalLength: 60),
                PcapRecord(timestampNanoseconds: 1_001_999_999_000, bytes: [], originalLength: 0),
            ])
    }

    @Test func readsOtherByteOrdersAndResolutions() throws {
        let littleMicro =
            header(bigEndian: false, nanoseconds: false) + littleEndian32(7) + littleEndian32(1)
            + littleEndian32(1) + littleEndian32(1) + [0xEE]
        #expect(try PcapReader(data: littleMicro).records.first?.timestampNanoseconds == 7_000_001_000)
        let bigNano =
            header(bigEndian: true, nanoseconds: true) + bigEndian32(7) + bigEndian32(1) + bigEndian32(1)
            + bigEndian32(1) + [0xEE]
        #expect(try PcapReader(data: bigNano).records.first?.timestampNanoseconds == 7_000_000_001)
        #expect(try PcapReader(data: header(bigEndian: false, nanoseconds: true)).records.isEmpty)
    }

    @Test func malformedInputNamesTheOffset() {
        let good = header(bigEndian: false, nanoseconds: true)
        let record = littleEndian32(1) + littleEndian32(2) + littleEndian32(3) + littleEndian32(3) + [9, 9, 9]

        #expect(pcapError([])?.offset == 0)
        #expect(pcapError(Array(good[..<23]))?.offset == 0)
        let pcapng: [UInt8] = [0x0A, 0x0D, 0x0D, 0x0A] + Array(good[4...])
        #expect(pcapError(pcapng)?.offset == 0)
        #expect(pcapError(good + Array(record[..<10]))?.offset == 24, "truncated record header")
        #expect(pcapError(good + Array(record[..<17]))?.offset == 24, "record data runs past the end")
        #expect(pcapError(good + record + Array(record[..<18]))?.offset == 24 + 19, "second record")
        let huge = littleEndian32(1) + littleEndian32(2) + littleEndian32(0x5000_0000) + littleEndian32(0)
        #expect(pcapError(good + huge)?.offset == 24 + 8, "absurd captured length")
        #expect(pcapError(good + record) == nil)
    }

    @Test func fileErrors() {
        #expect(throws: PcapError.self) { try PcapReader(path: "/nonexistent-vnic-dir/none.pcap") }
        #expect(throws: PcapError.self) { try PcapWriter(path: "/nonexistent-vnic-dir/none.pcap") }
    }
}
