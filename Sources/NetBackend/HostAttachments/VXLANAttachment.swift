import NICCore

/// A card on a VXLAN segment (RFC 7348), beyond what VirtualBox offers: each frame goes to the remote tunnel endpoint
/// inside a UDP datagram behind an 8-byte VXLAN header carrying the segment's VNI, so a card joins Linux's own
/// `vxlan` devices and the fabrics built on them (Open vSwitch, EVPN), and an internal network can span hosts.
///
/// ```swift
/// // ip link add vxlan42 type vxlan id 42 local 10.9.0.2 remote 10.9.0.1 dstport 4789
/// let vxlan = try VXLANAttachment(configuration: VXLANConfiguration(parsing: "vni=42,remote=10.9.0.2"))
/// card.port.attach(vxlan)                  // the guest should use vxlan.configuration.innerMTU (1450)
/// ```
///
/// Datagrams from any source port are taken, as Linux sends from a port per flow; one without the I flag, for another
/// VNI, or too short for a frame is dropped and counted. Frames larger than the inner MTU allows (plus one VLAN tag)
/// would be fragmented or dropped on the path, so they are dropped and counted here.
public final class VXLANAttachment: NetworkAttachment {
    /// The configuration the attachment was made with; its ``VXLANConfiguration/innerMTU`` is the MTU the card's
    /// guest should use.
    public let configuration: VXLANConfiguration
    private let runtime: UDPAttachmentRuntime

    /// Binds the VXLAN port and starts the event loop. Throws, naming the address, when the socket cannot be made or
    /// bound (the port in use: a Linux `vxlan` device on the same address and port, say).
    public init(configuration: VXLANConfiguration) throws(HostLinkError) {
        try configuration.validate()
        self.configuration = configuration
        let vni = configuration.vni
        runtime = try UDPAttachmentRuntime(
            name: "vxlan \(configuration)", local: configuration.localAddress, port: configuration.port,
            destination: IPEndpoint(configuration.remote, configuration.port),
            frames: DatagramFrames(
                counterPrefix: "vxlan", maximumFrameLength: configuration.innerMTU + EthernetHeader.size + 4,
                headerRoom: VXLANConfiguration.headerLength),
            header: Self.header(vni: vni),
            strip: { datagram in Self.frameOffset(in: datagram, vni: vni) })
    }

    deinit { runtime.close() }

    /// Stops the event loop and closes the socket. Safe to call more than once.
    public func close() { runtime.close() }

    /// The address and port the attachment receives on.
    public var localEndpoint: IPEndpoint { runtime.localEndpoint }

    /// Frames and bytes each way, and one counter per reason a frame was dropped.
    public var counters: [Counter] { runtime.frames.counters }

    /// The value of the counter named `name` (0 if there is none).
    public func counter(_ name: String) -> UInt64 { counters.first { $0.name == name }?.value ?? 0 }

    /// The VXLAN header for `vni`: the I flag (a valid VNI follows), the VNI in bytes 4 to 6.
    package static func header(vni: UInt32) -> [UInt8] {
        [
            0x08, 0, 0, 0, UInt8(truncatingIfNeeded: vni >> 16), UInt8(truncatingIfNeeded: vni >> 8),
            UInt8(truncatingIfNeeded: vni), 0,
        ]
    }

    /// Where the frame starts in `datagram` (after the header), or `nil` when the header lacks the I flag, is short,
    /// or names another VNI.
    package static func frameOffset(in datagram: UnsafeRawBufferPointer, vni: UInt32) -> Int? {
        guard datagram.count >= VXLANConfiguration.headerLength, datagram[0] & 0x08 != 0 else { return nil }
        let received = UInt32(datagram[4]) << 16 | UInt32(datagram[5]) << 8 | UInt32(datagram[6])
        return received == vni ? VXLANConfiguration.headerLength : nil
    }

    // MARK: NetworkAttachment

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        runtime.send(frame)
    }

    public func didAttach(_ port: FramePort) { runtime.frames.attach(port) }

    public func didDetach(_ port: FramePort) { runtime.frames.detach(port) }
}
