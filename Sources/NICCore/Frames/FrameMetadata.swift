/// Offload work that travels beside a frame's bytes: what the sender left for someone else to finish.
///
/// A backend that can use it (a TAP device with a virtio-net header) passes it on; a backend that cannot gets
/// finished frames.
public struct FrameMetadata: Hashable, Sendable {
    /// A checksum still to be computed over the frame from ``ChecksumRequest/start`` to its end, and stored at
    /// ``ChecksumRequest/start`` + ``ChecksumRequest/offset``.
    public var checksum: ChecksumRequest?
    /// Segmentation still to be done.
    public var segmentation: SegmentationRequest?
    /// An 802.1Q tag control field to insert after the source address.
    public var vlanTag: UInt16?
    /// The sender verified the frame's checksums (the virtio-net `DATA_VALID` convention): a receiver may skip
    /// checking them. Not pending work: it does not make the frame unfinished.
    public var checksumValid: Bool

    /// No offload work pending: the frame is finished.
    public static let none = FrameMetadata()

    public init(
        checksum: ChecksumRequest? = nil, segmentation: SegmentationRequest? = nil, vlanTag: UInt16? = nil,
        checksumValid: Bool = false
    ) {
        self.checksum = checksum
        self.segmentation = segmentation
        self.vlanTag = vlanTag
        self.checksumValid = checksumValid
    }

    /// Whether there is nothing left to finish.
    public var isFinished: Bool { checksum == nil && segmentation == nil && vlanTag == nil }
}

/// A partial checksum to complete (the virtio-net `NEEDS_CSUM` convention).
public struct ChecksumRequest: Hashable, Sendable {
    /// Where checksumming starts, from the start of the frame.
    public var start: Int
    /// Where the result goes, relative to `start`.
    public var offset: Int

    public init(start: Int, offset: Int) {
        self.start = start
        self.offset = offset
    }
}

/// Segmentation of a large TCP or UDP frame into wire-sized ones.
public struct SegmentationRequest: Hashable, Sendable {
    /// The protocol being segmented.
    public enum Kind: Hashable, Sendable {
        case tcpIPv4, tcpIPv6, udp
    }

    public var kind: Kind
    /// Payload bytes per segment.
    public var segmentSize: Int
    /// Length of the Ethernet, IP and transport headers repeated in every segment.
    public var headerLength: Int
    /// Whether ECN (CWR) handling applies.
    public var ecn: Bool

    public init(kind: Kind, segmentSize: Int, headerLength: Int, ecn: Bool = false) {
        self.kind = kind
        self.segmentSize = segmentSize
        self.headerLength = headerLength
        self.ecn = ecn
    }
}
