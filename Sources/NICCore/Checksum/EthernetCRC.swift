import CNICAccel

/// The IEEE 802.3 CRC-32 (reflected polynomial 0xEDB88320) that forms an Ethernet frame check sequence: folded by
/// carry-less multiplication where the CPU has it (PCLMULQDQ, through the CNICAccel shim), slice-by-16 otherwise and
/// for the tail.
public enum EthernetCRC {
    /// Whether the carry-less-multiplication path runs on this CPU.
    public static let isAccelerated = vnic_accel_crc32_available() != 0

    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 256 * 16)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            tables[byte] = crc
        }
        for byte in 0..<256 {
            for slice in 1..<16 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// Continues a raw (un-inverted) CRC register over `bytes`.
    public static func update(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if isAccelerated, bytes.count >= 64, let base = bytes.baseAddress {
            let folded = bytes.count & ~15
            let crc = vnic_accel_crc32_fold(register, base, folded)
            return tableUpdate(crc, UnsafeRawBufferPointer(rebasing: bytes[folded...]))
        }
        return tableUpdate(register, bytes)
    }

    /// Continues the register over `bytes` with the slice-by-16 tables (any CPU).
    public static func tableUpdate(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = register
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { t in
            @inline(__always) func lookup(_ slice: Int, _ word: UInt64, _ shift: UInt64) -> UInt32 {
                t[slice * 256 + Int((word >> shift) & 0xFF)]
            }
            while index + 16 <= count {
                let low =
                    UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ UInt64(crc)
                let high = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self))
                crc =
                    lookup(15, low, 0) ^ lookup(14, low, 8) ^ lookup(13, low, 16) ^ lookup(12, low, 24)
                    ^ lookup(11, low, 32) ^ lookup(10, low, 40) ^ lookup(9, low, 48) ^ lookup(8, low, 56)
                    ^ lookup(7, high, 0) ^ lookup(6, high, 8) ^ lookup(5, high, 16) ^ lookup(4, high, 24)
                    ^ lookup(3, high, 32) ^ lookup(2, high, 40) ^ lookup(1, high, 48) ^ lookup(0, high, 56)
                index += 16
            }
            while index < count {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(bytes[index])) & 0xFF)]
                index += 1
            }
        }
        return crc
    }

    /// The frame check sequence of `bytes` (the value transmitted least significant byte first).
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes)
    }

    /// The frame check sequence of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
