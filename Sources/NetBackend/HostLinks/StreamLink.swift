import Glibc
import NICCore
import Synchronization

/// A stream socket playing a card, in QEMU's `-netdev stream` framing (each frame preceded by its length as 4
/// big-endian bytes): a QEMU guest with QEMU's own card, or any program speaking the framing, becomes the guest of
/// an attachment, as passt serves QEMU.
///
/// ```swift
/// let nat = try NATAttachment(configuration: NATConfiguration())
/// let link = try StreamLink(listeningOn: .unix("/tmp/vnic.sock"), attachment: nat)
/// // qemu-system-x86_64 ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/vnic.sock
/// link.close()
/// ```
///
/// The link is the server: it listens on ``address`` and serves one client at a time (a second is closed at once and
/// counted). A length of 0 or above ``maximumFrameLength`` cannot be resynchronised, so it ends the connection and is
/// counted; the next client starts afresh. Frames for a client that does not read are queued up to
/// ``backlogLimit`` bytes, then dropped and counted. One thread runs the socket and the port, bounded work per
/// wakeup, no busy polling.
public final class StreamLink: @unchecked Sendable {
    /// The largest frame carried either way: a 65,535-byte IP packet behind an Ethernet header with one VLAN tag.
    public static let maximumFrameLength = TapDevice.maximumFrameLength
    /// Bytes queued for a client that is not reading before frames are dropped.
    public static let backlogLimit = 4 << 20

    /// The address the link listens on (with the port the kernel chose when 0 was asked for).
    public let address: StreamAddress
    /// The port the link drives, attached to the attachment.
    public let port: FramePort
    private let listener: Int32
    private let thread: EventLoopThread
    private let closed = OnceFlag()
    private let connected = Atomic<Bool>(false)

    // Loop-thread state.
    private var client: Int32 = -1
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var outputStart = 0
    private var watchingWritable = false
    private var scratch = [UInt8](repeating: 0, count: 65_536)

    private let connections = HostLinkCounter("stream_connections")
    private let busy = HostLinkCounter("stream_rejected_busy")
    private let disconnects = HostLinkCounter("stream_disconnects")
    private let badLengths = HostLinkCounter("stream_drop_bad_length")
    private let framesIn = HostLinkCounter("stream_frames_in")
    private let framesOut = HostLinkCounter("stream_frames_out")
    private let bytesIn = HostLinkCounter("stream_bytes_in")
    private let bytesOut = HostLinkCounter("stream_bytes_out")
    private let noClient = HostLinkCounter("stream_drop_no_client")
    private let backlog = HostLinkCounter("stream_drop_backlog")
    private let oversize = HostLinkCounter("stream_drop_oversize")
    private let socketErrors = HostLinkCounter("stream_socket_errors")

    /// Frames per wakeup towards the client, and reads per wakeup from it.
    static let batch = 256
    private static let readsPerWakeup = 64
    private static let clientEvents = EventLoop.readable | EventLoop.hangup

    /// Listens on `address` and attaches a fresh port to `attachment`. Throws, naming the address, when the socket
    /// cannot be made or bound (in use, a non-socket file at the path, no permission).
    public init(
        listeningOn address: StreamAddress, attachment: any NetworkAttachment, queueCapacity: Int = 4096
    ) throws(HostLinkError) {
        listener = try address.listen()
        if case .tcp(let requested) = address, let bound = HostSocket.localEndpoint(listener) {
            self.address = .tcp(IPv4Endpoint(requested.address, bound.port))
        } else {
            self.address = address
        }
        do {
            thread = try EventLoopThread.hostLink(named: "stream \(address)")
        } catch {
            Self.closeListener(listener, address)
            throw error
        }
        guard thread.loop.add(listener, events: EventLoop.readable) else {
            let code = errno
            Self.closeListener(listener, address)
            throw .system("stream \(address): epoll_ctl", errno: code)
        }
        port = FramePort(queueCapacity: queueCapacity)
        let loop = thread.loop
        port.onWork = { loop.wake() }
        port.attach(attachment)
        do {
            try thread.startHostLink { [self] ready in service(ready) }
        } catch {
            _ = closed.set()  // deinit's close() must not stop a thread that never ran or close anything twice
            port.onWork = nil
            port.detach()
            Self.closeListener(listener, address)
            throw error
        }
    }

    deinit { close() }

    /// Stops the thread (which keeps the link alive until then), detaches the port, closes the client and the listener
    /// (removing a unix socket file). Safe to call more than once.
    public func close() {
        guard closed.set() else { return }
        thread.stop()
        port.onWork = nil
        port.detach()
        if client >= 0 { Glibc.close(client) }
        client = -1
        connected.store(false, ordering: .releasing)
        Self.closeListener(listener, address)
    }

    /// Whether a client is connected now.
    public var isConnected: Bool { connected.load(ordering: .acquiring) }

    /// Connections, frames and bytes each way, and one counter per reason a frame or connection was dropped.
    public var counters: [Counter] {
        [
            connections, busy, disconnects, badLengths, framesIn, framesOut, bytesIn, bytesOut, noClient, backlog,
            oversize, socketErrors,
        ].map { Counter($0.name, $0.current) }
    }

    private static func closeListener(_ fd: Int32, _ address: StreamAddress) {
        Glibc.close(fd)
        if case .unix(let path) = address { unlink(path) }
    }

    // MARK: Loop thread

    private func service(_ ready: [(Int32, UInt32)]) {
        for (fd, events) in ready {
            if fd == listener {
                acceptClients()
            } else if fd == client {
                if events & EventLoop.writable != 0 { flush() }
                if client >= 0, events & (EventLoop.readable | EventLoop.hangup) != 0 { readFromClient() }
            }
        }
        writeFrames()
    }

    private func acceptClients() {
        for _ in 0..<8 {
            let fd = HostSocket.accept(listener)
            guard fd >= 0 else { return }
            guard client < 0 else {
                busy.bump()
                Glibc.close(fd)
                continue
            }
            guard thread.loop.add(fd, events: Self.clientEvents) else {
                socketErrors.bump()
                Glibc.close(fd)
                continue
            }
            client = fd
            connections.bump()
            connected.store(true, ordering: .releasing)
        }
    }

    private func disconnect() {
        guard client >= 0 else { return }
        thread.loop.remove(client)
        Glibc.close(client)
        client = -1
        connected.store(false, ordering: .releasing)
        input.removeAll()
        output.removeAll()
        outputStart = 0
        watchingWritable = false
        disconnects.bump()
    }

    private func readFromClient() {
        for _ in 0..<Self.readsPerWakeup {
            let count = scratch.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
                socketErrors.bump()
                disconnect()
                return
            }
            if count == 0 {
                disconnect()
                return
            }
            input.append(contentsOf: scratch[0..<count])
            guard parseFrames() else {
                badLengths.bump()
                disconnect()
                return
            }
        }
    }

    /// Hands every complete frame in `input` to the port; `false` when a length lies.
    private func parseFrames() -> Bool {
        var start = 0
        defer { if start > 0 { input.removeFirst(start) } }
        while input.count - start >= 4 {
            let length = Int(input.bigEndian32(at: start))
            guard length > 0, length <= Self.maximumFrameLength else { return false }
            guard input.count - start - 4 >= length else { return true }
            let frameStart = start + 4
            input.withUnsafeBytes { raw in
                port.transmit(UnsafeRawBufferPointer(rebasing: raw[frameStart..<frameStart + length]))
            }
            framesIn.bump()
            bytesIn.bump(by: UInt64(length))
            start = frameStart + length
        }
        return true
    }

    private func writeFrames() {
        port.acknowledgeWork()
        for _ in 0..<Self.batch {
            guard let frame = port.nextInbound() else { break }
            let length = frame.bytes.count
            guard client >= 0 else {
                noClient.bump()
                continue
            }
            guard length > 0, length <= Self.maximumFrameLength else {
                oversize.bump()
                continue
            }
            guard output.count - outputStart <= Self.backlogLimit else {
                backlog.bump()
                continue
            }
            output.appendBigEndian32(UInt32(length))
            output += frame.bytes
            framesOut.bump()
            bytesOut.bump(by: UInt64(length))
        }
        flush()
        if port.queuedFrames > 0 { thread.loop.wake() }
    }

    private func flush() {
        guard client >= 0 else { return }
        while outputStart < output.count {
            let sent = output.withUnsafeBytes { raw in
                send(
                    client, raw.baseAddress.map { $0 + outputStart }, raw.count - outputStart,
                    Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if sent > 0 {
                outputStart += sent
                continue
            }
            let code = errno
            if sent < 0, code == EAGAIN || code == EWOULDBLOCK || code == EINTR {
                if code == EINTR { continue }
                watchWritable(true)
                compactOutput()
                return
            }
            socketErrors.bump()
            disconnect()
            return
        }
        output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
        outputStart = 0
        watchWritable(false)
    }

    private func compactOutput() {
        if outputStart >= 1 << 20 {
            output.removeFirst(outputStart)
            outputStart = 0
        }
    }

    private func watchWritable(_ on: Bool) {
        guard on != watchingWritable, client >= 0 else { return }
        watchingWritable = on
        thread.loop.modify(client, events: Self.clientEvents | (on ? EventLoop.writable : 0))
    }
}
