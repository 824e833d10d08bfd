/// `struct virtio_net_hdr` (virtio 1.2 §5.1.6, and the header a TAP opened with `IFF_VNET_HDR` uses): the header
/// before every frame in both directions, little endian.
///
/// | offset | field |
/// |---|---|
/// | 0 | u8 flags (NEEDS_CSUM 1, DATA_VALID 2) |
/// | 1 | u8 gso_type (NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5; ECN 0x80) |
/// | 2 | le16 hdr_len |
/// | 4 | le16 gso_size |
/// | 6 | le16 csum_start |
/// | 8 | le16 csum_offset |
/// | 10 | le16 num_buffers (12-byte form: modern, or legacy with MRG_RXBUF) |
///
/// UDP segmentation has two forms, told apart by ``UDPForm``: the card's UFO (gso type 3, IP fragmentation) and the
/// TAP's UDP_L4 (gso type 5, USO); both map to ``SegmentationRequest/Kind/udp``.
public struct VirtioNetHeader: Hashable, Sendable {
    public var flags: UInt8
    public var gsoType: UInt8
    /// hdr_len: bytes of headers before the segmented payload.
    public var headerLength: UInt16
    /// gso_size: payload bytes per segment.
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    /// num_buffers (only in the 12-byte form).
    public var bufferCount: UInt16

    /// The header without num_buffers.
    public static let size = 10
    /// The header with num_buffers.
    public static let mergeableSize = 12

    /// VIRTIO_NET_HDR_F_NEEDS_CSUM.
    public static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID.
    public static let dataValid: UInt8 = 2
    /// VIRTIO_NET_HDR_GSO_NONE.
    public static let gsoNone: UInt8 = 0
    /// VIRTIO_NET_HDR_GSO_TCPV4.
    public static let gsoTCPv4: UInt8 = 1
    /// VIRTIO_NET_HDR_GSO_UDP (UFO).
    public static let gsoUDP: UInt8 = 3
    /// VIRTIO_NET_HDR_GSO_TCPV6.
    public static let gsoTCPv6: UInt8 = 4
    /// VIRTIO_NET_HDR_GSO_UDP_L4 (USO).
    public static let gsoUDPL4: UInt8 = 5
    /// VIRTIO_NET_HDR_GSO_ECN.
    public static let gsoECN: UInt8 = 0x80

    /// Which gso type stands for UDP segmentation.
    public enum UDPForm: Hashable, Sendable {
        /// The virtio-net card's: only ``VirtioNetHeader/gsoUDP`` (3) is UDP, written and read.
        case ufo
        /// A TAP's: ``VirtioNetHeader/gsoUDPL4`` (5) is written; 3 and 5 are both read as UDP.
        case udpL4
    }

    /// A header with the given fields (all zero by default: no offload).
    @inlinable
    public init(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, bufferCount: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.bufferCount = bufferCount
    }

    /// Parses the header at the start of `bytes`, with num_buffers when there are 12 bytes or more; `nil` when
    /// there are fewer than 10.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = bytes.load(littleEndian: UInt16.self, at: 2) ?? 0
        gsoSize = bytes.load(littleEndian: UInt16.self, at: 4) ?? 0
        checksumStart = bytes.load(littleEndian: UInt16.self, at: 6) ?? 0
        checksumOffset = bytes.load(littleEndian: UInt16.self, at: 8) ?? 0
        bufferCount = bytes.load(littleEndian: UInt16.self, at: 10) ?? 0
    }

    /// Stores the header's first `length` (10 or 12) bytes at the start of `buffer`; only the fields that fit in
    /// both are written.
    @inlinable
    public func store(into buffer: UnsafeMutableRawBufferPointer, length: Int = VirtioNetHeader.size) {
        let limit = Swift.min(length, buffer.count)
        guard limit >= Self.size, let base = buffer.baseAddress else { return storeFields(into: buffer, limit: limit) }
        // The common case, checked once: every field of the 10-byte header fits.
        base.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        base.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        base.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
        if limit >= Self.mergeableSize {
            base.storeBytes(of: bufferCount.littleEndian, toByteOffset: 10, as: UInt16.self)
        }
    }

    /// Stores the fields that fit in the first `limit` bytes of `buffer`, each checked.
    @usableFromInline
    func storeFields(into buffer: UnsafeMutableRawBufferPointer, limit: Int) {
        guard limit >= 1 else { return }
        let fields = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<limit])
        fields[0] = flags
        if limit >= 2 { fields[1] = gsoType }
        fields.store(littleEndian: headerLength, at: 2)
        fields.store(littleEndian: gsoSize, at: 4)
        fields.store(littleEndian: checksumStart, at: 6)
        fields.store(littleEndian: checksumOffset, at: 8)
        fields.store(littleEndian: bufferCount, at: 10)
    }

    /// The header's first `length` (10 or 12) bytes.
    public func bytes(length: Int = VirtioNetHeader.size) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Swift.max(0, length))
        bytes.withUnsafeMutableBytes { store(into: $0, length: length) }
        return bytes
    }

    // MARK: FrameMetadata

    /// The gso type (ECN bit clear) for segmentation of `kind`, in `form`.
    @inlinable
    public static func gsoType(for kind: SegmentationRequest.Kind, form: UDPForm) -> UInt8 {
        switch kind {
        case .tcpIPv4: gsoTCPv4
        case .tcpIPv6: gsoTCPv6
        case .udp: form == .ufo ? gsoUDP : gsoUDPL4
        }
    }

    /// The segmentation a gso type (ECN bit clear) stands for in `form`; `nil` for none or an unknown type.
    @inlinable
    public static func segmentationKind(ofGSOType type: UInt8, form: UDPForm) -> SegmentationRequest.Kind? {
        switch type {
        case gsoTCPv4: .tcpIPv4
        case gsoTCPv6: .tcpIPv6
        case gsoUDP: .udp
        case gsoUDPL4 where form == .udpL4: .udp
        default: nil
        }
    }

    /// The header describing `metadata`, unchecked (lengths clamped to 16 bits); VLAN insertion and
    /// ``FrameMetadata/checksumValid`` have no field here and are not described.
    public init(_ metadata: FrameMetadata, form: UDPForm) {
        self.init()
        if let checksum = metadata.checksum {
            flags = Self.needsChecksum
            checksumStart = UInt16(clamping: checksum.start)
            checksumOffset = UInt16(clamping: checksum.offset)
        }
        if let segmentation = metadata.segmentation {
            gsoType = Self.gsoType(for: segmentation.kind, form: form)
            if segmentation.ecn { gsoType |= Self.gsoECN }
            gsoSize = UInt16(clamping: segmentation.segmentSize)
            headerLength = UInt16(clamping: segmentation.headerLength)
        }
    }

    /// The offload work the header asks for, unchecked; `nil` for a gso type `form` does not know.
    public func metadata(form: UDPForm) -> FrameMetadata? {
        var metadata = FrameMetadata()
        if flags & Self.needsChecksum != 0 {
            metadata.checksum = ChecksumRequest(start: Int(checksumStart), offset: Int(checksumOffset))
        }
        let type = gsoType & ~Self.gsoECN
        guard type != Self.gsoNone else { return metadata }
        guard let kind = Self.segmentationKind(ofGSOType: type, form: form) else { return nil }
        metadata.segmentation = SegmentationRequest(
            kind: kind, segmentSize: Int(gsoSize), headerLength: Int(headerLength), ecn: gsoType & Self.gsoECN != 0)
        return metadata
    }
}
