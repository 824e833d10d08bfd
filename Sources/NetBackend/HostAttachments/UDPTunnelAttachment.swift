import CNetShims
import Glibc
import NICCore

/// VirtualBox's UDP tunnel: each frame the card sends goes out as one UDP datagram to a peer, and each datagram that
/// arrives on the local port is a frame for the card. No header is added, so the peer can be another vnic card, a
/// VirtualBox VM on a UDP tunnel, or QEMU's `-netdev dgram` and `-netdev socket,udp=`.
///
/// ```swift
/// var configuration = UDPTunnelConfiguration()
/// configuration.sourcePort = 4444                       // frames arrive here
/// configuration.destination = try #require(IPAddress("127.0.0.1"))
/// configuration.destinationPort = 4445                  // and go there
/// let tunnel = try UDPTunnelAttachment(configuration: configuration)
/// card.port.attach(tunnel)                              // carrier up
/// ```
///
/// Offloaded frames are finished (checksummed and segmented) by the card before they reach the tunnel, as VirtualBox
/// segments GSO frames. A frame over ``maximumFrameLength`` either way, a datagram shorter than an Ethernet header,
/// and with `accept=dest` a datagram from anyone but the peer, is dropped and counted. One event loop thread per
/// tunnel reads the socket, a bounded batch per wakeup; frames go out on the card's thread.
public final class UDPTunnelAttachment: NetworkAttachment {
    /// The largest UDP payload over IPv4, so the largest frame the tunnel carries.
    public static let maximumFrameLength = 65_507
    /// The configuration the tunnel was made with.
    public let configuration: UDPTunnelConfiguration
    private let runtime: UDPAttachmentRuntime

    /// Binds the local port and starts the event loop. Throws, naming the address, when the socket cannot be made or
    /// bound (the port in use, an address the host does not have).
    public init(configuration: UDPTunnelConfiguration = UDPTunnelConfiguration()) throws(HostLinkError) {
        try configuration.validate()
        self.configuration = configuration
        let peer = configuration.destinationEndpoint
        let only = configuration.acceptsOnlyDestination
        runtime = try UDPAttachmentRuntime(
            name: "udptunnel \(configuration)", local: configuration.localAddress, port: configuration.sourcePort,
            destination: peer,
            frames: DatagramFrames(counterPrefix: "udptunnel", maximumFrameLength: Self.maximumFrameLength),
            accept: { sender in !only || sender == peer })
    }

    /// The address and port frames arrive on (with the port the kernel chose when `sport` was 0).
    public var localEndpoint: IPEndpoint { runtime.localEndpoint }

    deinit { runtime.close() }

    /// Stops the event loop and closes the socket; frames sent afterwards are dropped and counted. Safe to call more
    /// than once.
    public func close() { runtime.close() }

    /// Frames and bytes each way, and one counter per reason a frame was dropped.
    public var counters: [Counter] { runtime.frames.counters }

    /// The value of the counter named `name` (0 if there is none).
    public func counter(_ name: String) -> UInt64 { counters.first { $0.name == name }?.value ?? 0 }

    // MARK: NetworkAttachment

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        runtime.send(frame)
    }

    public func didAttach(_ port: FramePort) { runtime.frames.attach(port) }

    public func didDetach(_ port: FramePort) { runtime.frames.detach(port) }
}

/// What a UDP-based attachment (the UDP tunnel, VXLAN) and its event loop thread share: the bound socket in its
/// ``DatagramFrames``, the peer, and the checks on what arrives. The thread holds this, not the attachment, so dropping
/// the last reference to the attachment closes the socket.
final class UDPAttachmentRuntime: @unchecked Sendable {
    let frames: DatagramFrames
    let destination: IPEndpoint
    /// The address and port the socket is bound to (with the port the kernel chose for 0).
    let localEndpoint: IPEndpoint
    private let header: [UInt8]
    private let accept: @Sendable (IPEndpoint?) -> Bool
    private let strip: @Sendable (UnsafeRawBufferPointer) -> Int?
    private let thread: EventLoopThread
    private let closed = OnceFlag()

    /// Datagrams read per wakeup.
    static let batch = 256

    /// Binds `local` (any address of the destination's family when `nil`) at `port` and starts the loop. Frames go
    /// to `destination` behind `header`; a datagram is taken when `accept` takes its sender and `strip` finds the
    /// length of its encapsulation.
    init(
        name: String, local: IPAddress?, port: UInt16, destination: IPEndpoint, frames: DatagramFrames,
        header: [UInt8] = [], accept: @escaping @Sendable (IPEndpoint?) -> Bool = { _ in true },
        strip: @escaping @Sendable (UnsafeRawBufferPointer) -> Int? = { _ in 0 }
    ) throws(HostLinkError) {
        let ipv6 = destination.address.isIPv6
        let fd = HostSocket.open(type: HostSocket.datagram, ipv6: ipv6)
        guard fd >= 0 else { throw .system("\(name): socket", errno: -fd) }
        let wildcard: IPAddress = ipv6 ? .v6(.any) : .v4(.any)
        let requested = IPEndpoint(local ?? wildcard, port)
        let code = HostSocket.bind(fd, to: requested)
        guard code == 0 else {
            Glibc.close(fd)
            throw .system("\(name): bind \(requested)", errno: code)
        }
        localEndpoint = HostSocket.localAddress(fd) ?? requested
        self.frames = frames
        self.destination = destination
        self.header = header
        self.accept = accept
        self.strip = strip
        do {
            thread = try EventLoopThread.hostLink(named: name)
        } catch {
            Glibc.close(fd)
            throw error
        }
        guard thread.loop.add(fd, events: EventLoop.readable) else {
            let code = errno
            Glibc.close(fd)
            throw .system("\(name): epoll_ctl", errno: code)
        }
        frames.replaceDescriptor(with: fd)
        do {
            try thread.startHostLink { [self] ready in service(ready) }
        } catch {
            _ = closed.set()
            Glibc.close(frames.replaceDescriptor(with: -1))
            throw error
        }
    }

    /// Sends one frame to the peer (the card's thread).
    func send(_ frame: UnsafeRawBufferPointer) {
        frames.send(frame, header: header, to: destination)
    }

    func close() {
        guard closed.set() else { return }
        thread.stop()
        let fd = frames.replaceDescriptor(with: -1)
        if fd >= 0 { Glibc.close(fd) }
    }

    private func service(_ ready: [(Int32, UInt32)]) {
        guard !ready.isEmpty else { return }
        // A hard socket error is counted; the socket stays (a UDP socket has no connection to lose).
        _ = frames.receive(limit: Self.batch, accept: accept, header: strip)
    }
}
