import CNetShims
import Glibc
import NICCore
import Synchronization

/// A port on a VDE switch (Virtual Distributed Ethernet, `vde_switch` from vde2): the card becomes one more machine
/// on the switch, beside QEMU's `-netdev vde`, `vde_plug2tap`, `slirpvde` and the rest of VDE.
///
/// ```swift
/// // vde_switch -s /tmp/lab -d
/// let vde = try VDEAttachment(configuration: VDEConfiguration(directory: "/tmp/lab"))
/// card.port.attach(vde)                     // carrier up while the switch is there
/// ```
///
/// The protocol is libvdeplug's version 3 (see `VDEConnection`); the switch takes frames up to 1,518 bytes
/// (``maximumFrameLength``), so longer ones are dropped and counted. When the switch goes away the card's link goes
/// down, and the attachment asks again every ``retryMilliseconds`` until the switch is back, when the link comes up
/// on a fresh port. Closing the attachment (or dropping it) gives the port back and removes its socket file.
public final class VDEAttachment: NetworkAttachment {
    /// The longest frame a VDE switch takes: an Ethernet header and 1,504 bytes (room for one VLAN tag).
    public static let maximumFrameLength = 14 + 1504
    /// How often the attachment tries to reach a switch that went away.
    public static let retryMilliseconds: Int32 = 500

    /// The switch and port asked for.
    public let configuration: VDEConfiguration
    private let runtime: VDERuntime

    /// Connects to the switch and takes a port. Throws, naming the switch's folder, when no switch answers there,
    /// it refuses the port, or its reply is malformed.
    public init(configuration: VDEConfiguration) throws(HostLinkError) {
        try configuration.validate()
        self.configuration = configuration
        runtime = try VDERuntime(configuration: configuration)
    }

    deinit { runtime.close() }

    /// Gives the port back, closes every socket and stops the event loop. Safe to call more than once.
    public func close() { runtime.close() }

    /// The switch port now held; `nil` while the switch is away.
    public var switchPort: Int? { runtime.switchPort }

    /// Whether the attachment holds a port on a switch now (the card's carrier).
    public var isConnected: Bool { runtime.frames.isLinkUp }

    /// Frames and bytes each way, connections made and lost, and one counter per reason a frame was dropped.
    public var counters: [Counter] { runtime.counters }

    /// The value of the counter named `name` (0 if there is none).
    public func counter(_ name: String) -> UInt64 { counters.first { $0.name == name }?.value ?? 0 }

    // MARK: NetworkAttachment

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        runtime.frames.send(frame, to: nil)
    }

    public func didAttach(_ port: FramePort) { runtime.frames.attach(port) }

    public func didDetach(_ port: FramePort) { runtime.frames.detach(port) }
}

/// What the attachment and its event loop thread share: the thread holds this, not the attachment.
final class VDERuntime: @unchecked Sendable {
    let frames = DatagramFrames(counterPrefix: "vde", maximumFrameLength: VDEAttachment.maximumFrameLength)
    private let configuration: VDEConfiguration
    private let thread: EventLoopThread
    private let closed = OnceFlag()
    private let connection = Mutex<VDEConnection?>(nil)
    private var sequence = 0
    private let connects = HostLinkCounter("vde_connects")
    private let losses = HostLinkCounter("vde_switch_lost")
    private let failedRetries = HostLinkCounter("vde_reconnect_failures")
    private let controlBytes = HostLinkCounter("vde_control_bytes_ignored")

    init(configuration: VDEConfiguration) throws(HostLinkError) {
        self.configuration = configuration
        thread = try EventLoopThread.hostLink(named: "vde \(configuration)")
        try connect()
        do {
            try thread.start { [self] ready in service(ready) }
        } catch {
            _ = closed.set()
            disconnect()
            throw HostLinkError(error)
        }
    }

    var switchPort: Int? { connection.withLock { $0?.port } }

    var counters: [Counter] {
        frames.counters + [connects, losses, failedRetries, controlBytes].map { Counter($0.name, $0.current) }
    }

    func close() {
        guard closed.set() else { return }
        thread.stop()
        disconnect()
    }

    /// Opens a port and puts its sockets on the loop; throws as ``VDEConnection/open(_:sequence:)`` does.
    private func connect() throws(HostLinkError) {
        let opened = try VDEConnection.open(configuration, sequence: &sequence)
        guard thread.loop.add(opened.control, events: EventLoop.readable | EventLoop.hangup),
            thread.loop.add(opened.data, events: EventLoop.readable)
        else {
            let code = errno
            thread.loop.remove(opened.control)
            opened.close()
            throw .system("vde \(configuration.directory): epoll_ctl", errno: code)
        }
        connection.withLock { $0 = opened }
        frames.replaceDescriptor(with: opened.data)
        connects.bump()
    }

    /// Drops the link and closes the port's sockets, if there is one.
    private func disconnect() {
        frames.replaceDescriptor(with: -1)
        guard
            let old = connection.withLock({ state -> VDEConnection? in
                defer { state = nil }
                return state
            })
        else { return }
        thread.loop.remove(old.control)
        thread.loop.remove(old.data)
        old.close()
    }

    // MARK: Loop thread

    private func service(_ ready: [(Int32, UInt32)]) -> Int32 {
        guard let current = connection.withLock({ $0 }) else {
            do throws(HostLinkError) {
                try connect()
            } catch {
                failedRetries.bump()
                return VDEAttachment.retryMilliseconds
            }
            return 5_000
        }
        for (fd, events) in ready {
            if fd == current.data {
                if frames.receive(limit: 256, accept: { _ in true }) != nil { return switchLost() }
            } else if fd == current.control {
                if controlEnded(current.control, events: events) { return switchLost() }
            }
        }
        return 5_000
    }

    /// Reads what the switch says on the control stream (nothing, in version 3); `true` when the stream ended.
    private func controlEnded(_ control: Int32, events: UInt32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 256)
        for _ in 0..<16 {
            let count = buffer.withUnsafeMutableBytes { recv(control, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                controlBytes.bump(by: UInt64(count))
                continue
            }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK { return events & EventLoop.peerClosed != 0 }
            if count < 0, errno == EINTR { continue }
            return true
        }
        return false
    }

    private func switchLost() -> Int32 {
        losses.bump()
        disconnect()
        return VDEAttachment.retryMilliseconds
    }
}
