import NICCore

/// struct virtio_net_hdr (virtio 1.2 §5.1.6): the header before every frame in both directions.
///
/// | offset | field |
/// |---|---|
/// | 0 | u8 flags (NEEDS_CSUM 1, DATA_VALID 2) |
/// | 1 | u8 gso_type (NONE 0, TCPV4 1, UDP 3, TCPV6 4; ECN 0x80) |
/// | 2 | le16 hdr_len |
/// | 4 | le16 gso_size |
/// | 6 | le16 csum_start |
/// | 8 | le16 csum_offset |
/// | 10 | le16 num_buffers (12-byte form: modern, or legacy with MRG_RXBUF) |
public struct VirtioNetHeader: Hashable, Sendable {
    public var flags: UInt8 = 0
    public var gsoType: UInt8 = 0
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0
    public var bufferCount: UInt16 = 0

    public static let needsChecksum: UInt8 = 1
    public static let dataValid: UInt8 = 2
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoECN: UInt8 = 0x80

    public init() {}

    /// Parses the first 10 bytes of `bytes` (the caller checked there are that many), plus num_buffers if present.
    init(_ bytes: UnsafeRawBufferPointer) {
        func le16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = le16(2)
        gsoSize = le16(4)
        checksumStart = le16(6)
        checksumOffset = le16(8)
        if bytes.count >= 12 { bufferCount = le16(10) }
    }

    /// Stores the header's first `length` (10 or 12) bytes into `buffer`.
    func store(into buffer: UnsafeMutableRawBufferPointer, length: Int) {
        func put(_ value: UInt16, _ at: Int) {
            buffer[at] = UInt8(truncatingIfNeeded: value)
            buffer[at + 1] = UInt8(truncatingIfNeeded: value >> 8)
        }
        buffer[0] = flags
        buffer[1] = gsoType
        put(headerLength, 2)
        put(gsoSize, 4)
        put(checksumStart, 6)
        put(checksumOffset, 8)
        if length >= 12 { put(bufferCount, 10) }
    }
}
