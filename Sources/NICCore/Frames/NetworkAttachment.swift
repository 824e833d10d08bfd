/// The backend side of a ``FramePort``: where a card's frames go (NAT, a switch, a host interface, nothing).
///
/// `transmit` is called on the card's thread; an attachment that talks to the host OS hands the frame to its own
/// thread and returns. Frames travel back to the card through ``FramePort/deliver(_:metadata:)``.
public protocol NetworkAttachment: AnyObject, Sendable {
    /// A frame the card sent. `frame` is valid only during the call.
    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort)
    /// The port was attached to this attachment.
    func didAttach(_ port: FramePort)
    /// The port was detached from this attachment.
    func didDetach(_ port: FramePort)
    /// The card's receive filter changed: it now wants every frame (`true`) or only its own.
    func promiscuousModeChanged(_ promiscuous: Bool, on port: FramePort)
    /// Whether ``transmit(_:metadata:from:)`` finishes frames itself (checksums, segmentation, VLAN tags), so a card
    /// may hand over unfinished frames with their ``FrameMetadata``. `false` (the default): cards finish frames in
    /// software (``FrameFinisher``) and pass only finished ones.
    var acceptsOffloadMetadata: Bool { get }
}

extension NetworkAttachment {
    public var acceptsOffloadMetadata: Bool { false }
    public func didAttach(_ port: FramePort) {}
    public func didDetach(_ port: FramePort) {}
    public func promiscuousModeChanged(_ promiscuous: Bool, on port: FramePort) {}
}

/// The direction of a frame through a port, as capture sees it.
public enum FrameDirection: Sendable {
    /// The card sent it.
    case transmitted
    /// It was delivered to the card.
    case received
}

/// Something that watches a port's traffic (packet capture).
public protocol FrameTap: AnyObject, Sendable {
    /// Sees one frame; `frame` is valid only during the call. May be called from any thread.
    func observe(_ frame: UnsafeRawBufferPointer, direction: FrameDirection)
}
