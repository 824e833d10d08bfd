/// The Internet checksum (RFC 1071): a ones'-complement sum of 16-bit big-endian words.
public struct InternetChecksum: Hashable, Sendable {
    private var sum: UInt64 = 0
    private var odd = false

    /// Starts an empty sum.
    public init() {}

    /// Adds `bytes` to the sum; consecutive calls behave as one call over the concatenation.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        let count = bytes.count
        if odd, count > 0 {
            sum &+= UInt64(bytes[0])
            index = 1
            odd = false
        }
        if count - index >= 16 {
            // Eight bytes at a time in the machine's byte order: the ones'-complement sum of little-endian words is
            // the byte-swapped sum of big-endian ones (RFC 1071, section 2(B)). 2^31 iterations cannot overflow.
            var local: UInt64 = 0
            while index + 8 <= count {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                local &+= (word & 0xFFFF_FFFF) &+ (word >> 32)
                index += 8
            }
            while local > 0xFFFF { local = (local & 0xFFFF) &+ (local >> 16) }
            sum &+= UInt64(UInt16(truncatingIfNeeded: local).byteSwapped)
        }
        while index + 1 < count {
            sum &+= UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
        }
        if index < count {
            sum &+= UInt64(bytes[index]) << 8
            odd = true
        }
        if sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
    }

    /// Adds `bytes` to the sum.
    public mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { add($0) }
    }

    /// Adds one 16-bit word (for pseudo-headers); must be called at an even byte position.
    public mutating func add(word: UInt16) {
        sum &+= UInt64(word)
    }

    /// The checksum: the ones' complement of the folded sum.
    public var value: UInt16 {
        var folded = sum
        while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }

    /// The checksum of `bytes`.
    public static func of(_ bytes: [UInt8]) -> UInt16 {
        var checksum = InternetChecksum()
        checksum.add(bytes)
        return checksum.value
    }
}
