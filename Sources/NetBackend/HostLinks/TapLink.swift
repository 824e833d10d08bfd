import Glibc
import NICCore

/// A TAP interface playing a card: the Linux stack behind the interface (in a network namespace, say) becomes the
/// guest of an attachment, as slirp4netns does for its namespace.
///
/// ```swift
/// let nat = try NATAttachment(configuration: NATConfiguration())
/// let link = try TapLink(device: TapDevice(name: "tap0", networkNamespace: "/run/netns/guest"), attachment: nat)
/// ...
/// link.close()
/// nat.close()
/// ```
///
/// One thread waits in epoll on the TAP and on an eventfd the port's `onWork` rings: it reads frames from the TAP
/// into the port (`FramePort.transmit(_:metadata:)`) and writes the frames the attachment delivered to the TAP.
/// Attached to a ``NATAttachment``, that thread is the NAT's own event loop (no thread of the link's, no handoff
/// between two threads per burst). Work per wakeup is bounded; every frame not carried is counted in ``counters``.
///
/// When the device has ``TapDevice/offloads``, each frame's virtio-net header becomes the frame's `FrameMetadata`
/// and back, so the attachment must finish checksums and segmentation it is handed: a ``NATAttachment`` does, and is
/// told it may send the interface 64 KiB TCP segments to be split by the receiving stack.
public final class TapLink: NATGuestLink, @unchecked Sendable {
    /// The TAP interface.
    public let device: TapDevice
    /// The port the link drives, attached to the attachment.
    public let port: FramePort
    /// The link's own thread, unless the NAT's event loop serves it.
    private let thread: EventLoopThread?
    /// The event loop the TAP is registered with (the link's own, or the NAT's).
    private let loop: EventLoop
    private let nat: NATRuntime?
    private let closed = OnceFlag()
    // Loop-thread state.
    private var readBuffer = [UInt8](repeating: 0, count: VirtioNetHeader.size + TapDevice.maximumFrameLength + 1)
    private var readable = true

    private let framesIn = HostLinkCounter("tap_frames_in")
    private let framesOut = HostLinkCounter("tap_frames_out")
    private let bytesIn = HostLinkCounter("tap_bytes_in")
    private let bytesOut = HostLinkCounter("tap_bytes_out")
    private let runts = HostLinkCounter("tap_drop_runt")
    private let oversizeIn = HostLinkCounter("tap_drop_oversize_in")
    private let oversizeOut = HostLinkCounter("tap_drop_oversize_out")
    private let writeAgain = HostLinkCounter("tap_drop_write_eagain")
    private let shortWrites = HostLinkCounter("tap_drop_short_write")
    private let writeErrors = HostLinkCounter("tap_drop_write_error")
    private let readErrors = HostLinkCounter("tap_read_errors")
    private let badHeaders = HostLinkCounter("tap_drop_bad_offload_header")

    /// Frames per wakeup in each direction; more waits for the next round of the loop.
    static let batch = 256

    /// Attaches `device` to `attachment` through a fresh port and starts the link's thread. The link owns the device
    /// from here on and closes it in ``close()``.
    public init(
        device: TapDevice, attachment: any NetworkAttachment, queueCapacity: Int = 4096
    ) throws(HostLinkError) {
        self.device = device
        port = FramePort(queueCapacity: queueCapacity)
        if let nat = attachment as? NATAttachment {
            self.nat = nat.runtime
            thread = nil
            loop = nat.runtime.thread.loop
        } else {
            nat = nil
            let thread = try EventLoopThread.hostLink(named: "TAP \(device.name)")
            self.thread = thread
            loop = thread.loop
        }
        let loop = loop
        port.onWork = { loop.wake() }
        port.attach(attachment)
        if device.offloads { nat?.setGuestOffloads(true) }
        do throws(HostLinkError) {
            if let nat {
                guard nat.attachGuestLink(self) else {
                    throw HostLinkError.system("TAP \(device.name): epoll_ctl", errno: errno)
                }
            } else if let thread {
                guard loop.add(device.fileDescriptor, events: EventLoop.readable) else {
                    throw HostLinkError.system("TAP \(device.name): epoll_ctl", errno: errno)
                }
                try thread.startHostLink { [self] ready in service(ready) }
            }
        } catch {
            _ = closed.set()  // deinit's close() must not stop a thread that never ran or close anything twice
            if device.offloads { nat?.setGuestOffloads(false) }
            port.onWork = nil
            port.detach()
            throw error
        }
    }

    /// Creates the TAP `name` (inside the network namespace at `networkNamespace` when given, with
    /// ``TapDevice/offloads`` when `offloads`) and attaches it to `attachment`.
    public convenience init(
        name: String, networkNamespace: String? = nil, offloads: Bool = false, attachment: any NetworkAttachment
    ) throws(HostLinkError) {
        try self.init(
            device: TapDevice(name: name, networkNamespace: networkNamespace, offloads: offloads),
            attachment: attachment)
    }

    deinit { close() }

    /// Stops the thread (which keeps the link alive until then), detaches the port and closes the TAP. Safe to call
    /// more than once.
    public func close() {
        guard closed.set() else { return }
        thread?.stop()
        nat?.detachGuestLink(self)
        if device.offloads { nat?.setGuestOffloads(false) }
        port.onWork = nil
        port.detach()
        device.close()
    }

    /// Frames and bytes each way, and one counter per reason a frame was not carried.
    public var counters: [Counter] {
        [
            framesIn, framesOut, bytesIn, bytesOut, runts, oversizeIn, oversizeOut, writeAgain, shortWrites,
            writeErrors, readErrors, badHeaders,
        ].map { Counter($0.name, $0.current) }
    }

    private func service(_ ready: [(Int32, UInt32)]) {
        if readable, ready.contains(where: { $0.0 == device.fileDescriptor }) { readFrames() }
        writeFrames()
    }

    // MARK: NATGuestLink (on the NAT's event loop)

    var guestFileDescriptor: Int32 { device.fileDescriptor }

    func serviceGuest(readable ready: Bool) {
        if readable, ready {
            if let nat { nat.guestBurst { readFrames() } } else { readFrames() }
        }
        writeFrames()
    }

    private func readFrames() {
        let fd = device.fileDescriptor
        let skip = device.offloads ? VirtioNetHeader.size : 0
        for _ in 0..<Self.batch {
            let count = readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
                // The interface is gone (its namespace deleted, say): stop watching it rather than spin.
                readErrors.bump()
                loop.remove(fd)
                readable = false
                return
            }
            if count == 0 { return }
            guard count >= skip + 14 else {
                runts.bump()
                continue
            }
            let length = count - skip
            guard length <= TapDevice.maximumFrameLength else {
                oversizeIn.bump()
                continue
            }
            readBuffer.withUnsafeBytes { raw in
                var metadata = FrameMetadata.none
                if skip > 0 {
                    guard
                        let known = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: raw[0..<skip]))?.metadata(
                            form: .udpL4)
                    else { return badHeaders.bump() }
                    metadata = known
                }
                framesIn.bump()
                bytesIn.bump(by: UInt64(length))
                port.transmit(UnsafeRawBufferPointer(rebasing: raw[skip..<count]), metadata: metadata)
            }
        }
    }

    private func writeFrames() {
        port.acknowledgeWork()
        let fd = device.fileDescriptor
        for _ in 0..<Self.batch {
            guard let frame = port.nextInbound() else { return }
            let length = frame.bytes.count
            guard length <= TapDevice.maximumFrameLength else {
                oversizeOut.bump()
                continue
            }
            let written: Int
            if device.offloads {
                let header = VirtioNetHeader(frame.metadata, form: .udpL4).bytes()
                let result = Self.writeFrame(fd, header, frame.bytes)
                written = result < 0 ? -1 : max(0, result - header.count)
            } else {
                written = frame.bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
            if written == length {
                framesOut.bump()
                bytesOut.bump(by: UInt64(length))
            } else if written >= 0 {
                shortWrites.bump()
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                writeAgain.bump()
            } else {
                writeErrors.bump()
            }
        }
        // More than a batch waiting: come round again after the TAP has had its turn.
        if port.queuedFrames > 0 { loop.wake() }
    }

    /// Writes `header` and `frame` as one frame (`writev`); the bytes written, or -1.
    private static func writeFrame(_ fd: Int32, _ header: [UInt8], _ frame: [UInt8]) -> Int {
        header.withUnsafeBytes { head in
            frame.withUnsafeBytes { body in
                var vectors = [
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count),
                ]
                return vectors.withUnsafeMutableBufferPointer { writev(fd, $0.baseAddress, 2) }
            }
        }
    }
}
