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
    /// Datagrams read per wakeup of the event loop.
    static let batch = 256

    /// The configuration the tunnel was made with.
    public let configuration: UDPTunnelConfiguration
    /// The address and port frames arrive on (with the port the kernel chose when `sport` was 0).
    public let localEndpoint: IPEndpoint
    private let runtime: UDPTunnelRuntime

    /// Binds the local port and starts the event loop. Throws, naming the address, when the socket cannot be made or
    /// bound (the port in use, an address the host does not have).
    public init(configuration: UDPTunnelConfiguration = UDPTunnelConfiguration()) throws(HostLinkError) {
        try configuration.validate()
        let ipv6 = configuration.destination.isIPv6
        let fd = HostSocket.open(type: HostSocket.datagram, ipv6: ipv6)
        guard fd >= 0 else { throw .system("udptunnel: socket", errno: -fd) }
        let wildcard: IPAddress = ipv6 ? .v6(.any) : .v4(.any)
        let local = IPEndpoint(configuration.localAddress ?? wildcard, configuration.sourcePort)
        let code = HostSocket.bind(fd, to: local)
        guard code == 0 else {
            Glibc.close(fd)
            throw .system("udptunnel: bind \(local)", errno: code)
        }
        self.configuration = configuration
        localEndpoint = HostSocket.localAddress(fd) ?? local
        runtime = try UDPTunnelRuntime(descriptor: fd, configuration: configuration)
    }

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
        runtime.frames.send(frame, to: runtime.destination)
    }

    public func didAttach(_ port: FramePort) { runtime.frames.attach(port) }

    public func didDetach(_ port: FramePort) { runtime.frames.detach(port) }
}

/// What the tunnel and its event loop thread share; the thread holds this, not the attachment, so dropping the last
/// reference to the attachment closes the tunnel.
final class UDPTunnelRuntime: @unchecked Sendable {
    let frames = DatagramFrames(
        counterPrefix: "udptunnel", maximumFrameLength: UDPTunnelAttachment.maximumFrameLength)
    let destination: IPEndpoint
    private let acceptsOnlyDestination: Bool
    private let thread: EventLoopThread
    private let closed = OnceFlag()

    init(descriptor: Int32, configuration: UDPTunnelConfiguration) throws(HostLinkError) {
        destination = configuration.destinationEndpoint
        acceptsOnlyDestination = configuration.acceptsOnlyDestination
        let name = "udptunnel \(configuration)"
        do {
            thread = try EventLoopThread.hostLink(named: name)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        guard thread.loop.add(descriptor, events: EventLoop.readable) else {
            let code = errno
            Glibc.close(descriptor)
            throw .system("\(name): epoll_ctl", errno: code)
        }
        frames.replaceDescriptor(with: descriptor)
        do {
            try thread.startHostLink { [self] ready in service(ready) }
        } catch {
            _ = closed.set()
            Glibc.close(frames.replaceDescriptor(with: -1))
            throw error
        }
    }

    func close() {
        guard closed.set() else { return }
        thread.stop()
        let fd = frames.replaceDescriptor(with: -1)
        if fd >= 0 { Glibc.close(fd) }
    }

    private func service(_ ready: [(Int32, UInt32)]) {
        guard !ready.isEmpty else { return }
        let peer = destination
        let only = acceptsOnlyDestination
        // A hard socket error is counted; the socket stays (a UDP socket has no connection to lose).
        _ = frames.receive(limit: UDPTunnelAttachment.batch) { sender in !only || sender == peer }
    }
}
