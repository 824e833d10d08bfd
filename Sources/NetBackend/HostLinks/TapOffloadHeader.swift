import NICCore

/// The 10-byte `struct virtio_net_hdr` a TAP opened with `IFF_VNET_HDR` puts before every frame each way (little
/// endian: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset), translated to and from ``FrameMetadata``.
struct TapOffloadHeader: Equatable {
    static let size = 10

    static let needsChecksum: UInt8 = 1
    static let gsoNone: UInt8 = 0
    static let gsoTCPv4: UInt8 = 1
    static let gsoUDP: UInt8 = 3
    static let gsoTCPv6: UInt8 = 4
    static let gsoUDPL4: UInt8 = 5
    static let gsoECN: UInt8 = 0x80

    var flags: UInt8 = 0
    var gsoType: UInt8 = 0
    var headerLength: UInt16 = 0
    var segmentSize: UInt16 = 0
    var checksumStart: UInt16 = 0
    var checksumOffset: UInt16 = 0

    init() {}

    /// Reads the header at the start of `bytes`; `nil` when there are fewer than ``size`` bytes.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        func u16(_ index: Int) -> UInt16 { UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8 }
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = u16(2)
        segmentSize = u16(4)
        checksumStart = u16(6)
        checksumOffset = u16(8)
    }

    /// The header describing `metadata` (VLAN insertion has no field here and is not described).
    init(_ metadata: FrameMetadata) {
        if let checksum = metadata.checksum {
            flags = Self.needsChecksum
            checksumStart = UInt16(clamping: checksum.start)
            checksumOffset = UInt16(clamping: checksum.offset)
        }
        if let segmentation = metadata.segmentation {
            switch segmentation.kind {
            case .tcpIPv4: gsoType = Self.gsoTCPv4
            case .tcpIPv6: gsoType = Self.gsoTCPv6
            case .udp: gsoType = Self.gsoUDPL4
            }
            if segmentation.ecn { gsoType |= Self.gsoECN }
            segmentSize = UInt16(clamping: segmentation.segmentSize)
            headerLength = UInt16(clamping: segmentation.headerLength)
        }
    }

    /// The offload work the header asks for; `nil` for a segmentation type this link does not know.
    var metadata: FrameMetadata? {
        var metadata = FrameMetadata()
        if flags & Self.needsChecksum != 0 {
            metadata.checksum = ChecksumRequest(start: Int(checksumStart), offset: Int(checksumOffset))
        }
        let kind: SegmentationRequest.Kind
        switch gsoType & ~Self.gsoECN {
        case Self.gsoNone: return metadata
        case Self.gsoTCPv4: kind = .tcpIPv4
        case Self.gsoTCPv6: kind = .tcpIPv6
        case Self.gsoUDP, Self.gsoUDPL4: kind = .udp
        default: return nil
        }
        metadata.segmentation = SegmentationRequest(
            kind: kind, segmentSize: Int(segmentSize), headerLength: Int(headerLength),
            ecn: gsoType & Self.gsoECN != 0)
        return metadata
    }

    /// The header's bytes.
    var bytes: [UInt8] {
        [
            flags, gsoType, UInt8(truncatingIfNeeded: headerLength), UInt8(truncatingIfNeeded: headerLength >> 8),
            UInt8(truncatingIfNeeded: segmentSize), UInt8(truncatingIfNeeded: segmentSize >> 8),
            UInt8(truncatingIfNeeded: checksumStart), UInt8(truncatingIfNeeded: checksumStart >> 8),
            UInt8(truncatingIfNeeded: checksumOffset), UInt8(truncatingIfNeeded: checksumOffset >> 8),
        ]
    }
}
