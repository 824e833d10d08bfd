import NICCore
import Testing

@Suite struct InternetChecksumTests {
    @Test func rfc1071Example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (folded); the checksum is its complement.
        #expect(InternetChecksum.of([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == ~UInt16(0xDDF2))
    }

    @Test func ipv4HeaderVerifiesToZero() {
        var header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8,
            0x00, 0xC7,
        ]
        let checksum = InternetChecksum.of(header)
        #expect(checksum == 0xB861)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(truncatingIfNeeded: checksum)
        #expect(InternetChecksum.of(header) == 0)
    }

    @Test func oddLengthsPadWithZero() {
        #expect(InternetChecksum.of([]) == 0xFFFF)
        #expect(InternetChecksum.of([0x01]) == ~UInt16(0x0100))
        #expect(InternetChecksum.of([0x00, 0x01, 0xF2]) == ~UInt16(0xF201))
        #expect(InternetChecksum.of([0x00, 0x01, 0xF2]) == InternetChecksum.of([0x00, 0x01, 0xF2, 0x00]))
    }

    @Test func carriesFoldAround() {
        // 0xffff + 0xffff = 0x1fffe folds to 0xffff; + 0x0002 = 0x10001 folds to 0x0002.
        #expect(InternetChecksum.of([0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x02]) == ~UInt16(0x0002))
        // 100 000 words of 0xffff (ones' complement minus zero) sum to 0xffff; the odd tail byte adds 0xff00.
        #expect(InternetChecksum.of([UInt8](repeating: 0xFF, count: 200_000)) == 0x0000)
        #expect(InternetChecksum.of([UInt8](repeating: 0xFF, count: 200_001)) == 0x00FF)
    }

    @Test func splitAddsEqualOneAdd() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<97).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let whole = InternetChecksum.of(data)
        for split in 0...data.count {
            var checksum = InternetChecksum()
            checksum.add(Array(data[..<split]))
            checksum.add(Array(data[split...]))
            #expect(checksum.value == whole, "split at \(split)")
        }
        for first in stride(from: 1, to: 20, by: 3) {
            var checksum = InternetChecksum()
            checksum.add(Array(data[..<first]))
            checksum.add(Array(data[first..<(first + 7)]))
            checksum.add(Array(data[(first + 7)...]))
            #expect(checksum.value == whole, "three pieces from \(first)")
        }
    }

    @Test func pseudoHeaderWords() {
        var checksum = InternetChecksum()
        checksum.add(word: 0x0001)
        checksum.add(word: 0xF203)
        checksum.add([0xF4, 0xF5, 0xF6, 0xF7])
        #expect(checksum.value == ~UInt16(0xDDF2))
    }
}

@Suite struct EthernetCRCTests {
    /// Bit-at-a-time reference for the slice-by-8 implementation.
    private func referenceCRC(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test func checkValue() {
        #expect(EthernetCRC.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(EthernetCRC.checksum([]) == 0)
        #expect(EthernetCRC.checksum([0x61]) == 0xE8B7_BE43)
    }

    /// A 60-byte ARP request (padded to the minimum frame size); the FCS is the value zlib's crc32 gives.
    static let arpRequest: [UInt8] =
        [
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00,
            0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0A, 0x00, 0x02, 0x0F, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x0A, 0x00, 0x02, 0x02,
        ] + [UInt8](repeating: 0, count: 18)

    @Test func knownFrameCheckSequence() {
        let fcs = EthernetCRC.checksum(Self.arpRequest)
        #expect(fcs == 0x3CE6_1F8B)
        // The FCS goes on the wire least significant byte first; a receiver's CRC over frame + FCS is the residue.
        let wire = Self.arpRequest + (0..<4).map { UInt8(truncatingIfNeeded: fcs >> (8 * $0)) }
        #expect(EthernetCRC.checksum(wire) == 0x2144_DF1C)
    }

    @Test func matchesBitwiseReferenceAtEveryLength() {
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for length in 0...40 {
            #expect(EthernetCRC.checksum(Array(data[..<length])) == referenceCRC(Array(data[..<length])))
        }
        #expect(EthernetCRC.checksum(data) == referenceCRC(data))
    }

    @Test func updateContinuesAcrossPieces() {
        let data = Array(0..<200).map { UInt8($0) }
        let whole = EthernetCRC.checksum(data)
        let register = data[..<13].withUnsafeBytes { EthernetCRC.update(0xFFFF_FFFF, $0) }
        let finished = data[13...].withUnsafeBytes { EthernetCRC.update(register, $0) }
        #expect(~finished == whole)
    }
}

@Suite("Internet checksum against a word-by-word reference")
struct InternetChecksumReferenceTests {
    /// RFC 1071 done the slow way: big-endian 16-bit words, end-around carry, complement.
    static func reference(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index < bytes.count {
            let high = UInt32(bytes[index]) << 8
            let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            sum += high | low
            sum = (sum & 0xFFFF) + (sum >> 16)
            index += 2
        }
        return ~UInt16(sum)
    }

    @Test func everyLengthAndSplitMatchesTheReference() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<300 {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(InternetChecksum.of(data) == Self.reference(data), "length \(length)")
            let split = length == 0 ? 0 : Int.random(in: 0...length, using: &generator)
            var pieces = InternetChecksum()
            pieces.add(Array(data[..<split]))
            pieces.add(Array(data[split...]))
            #expect(pieces.value == Self.reference(data), "length \(length) split at \(split)")
        }
        let ones = [UInt8](repeating: 0xFF, count: 65_536 + 7)
        #expect(InternetChecksum.of(ones) == Self.reference(ones))
    }
}
