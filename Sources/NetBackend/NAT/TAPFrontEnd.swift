import CNetShims
import Glibc
import NICCore
import Synchronization

/// A host TAP interface standing in for a card: the Linux stack behind the interface (in a network namespace, say)
/// becomes the guest of an attachment, as slirp4netns does for its namespace.
///
/// ```swift
/// let nat = try NATAttachment(configuration: NATConfiguration())
/// let tap = try TAPFrontEnd(name: "tap0", networkNamespace: "/run/netns/guest", attachment: nat)
/// ...
/// tap.close()
/// ```
///
/// The interface is created (inside the namespace when one is named) and left down, for the namespace to configure
/// or to bring up and run DHCP on. One thread reads frames from the TAP and transmits them into the attachment;
/// frames from the attachment are written back to the TAP from whichever thread delivers them.
public final class TAPFrontEnd: @unchecked Sendable {
    /// The interface's name (the kernel's choice when the requested name had a `%d`).
    public let interfaceName: String
    /// The port the TAP drives, attached to the attachment.
    public let port: FramePort
    private let fd: Int32
    private let running = Atomic<Bool>(true)
    private let readerDone = Atomic<Bool>(false)
    private let framesIn = Atomic<UInt64>(0)
    private let framesOut = Atomic<UInt64>(0)
    private let writeDrops = Atomic<UInt64>(0)
    private let writeLock = Mutex<Void>(())

    /// Creates (or attaches to) the TAP `name`, in the network namespace at `networkNamespace` (a path such as
    /// `/run/netns/NAME` or `/proc/PID/ns/net`) if given, and attaches it to `attachment`.
    public init(name: String, networkNamespace: String? = nil, attachment: any NetworkAttachment) throws(NATError) {
        var actual = [CChar](repeating: 0, count: 16)
        let open = { actual.withUnsafeMutableBufferPointer { cnet_tap_open(name, $0.baseAddress) } }
        let descriptor =
            try networkNamespace.map { path throws(NATError) in try withNetworkNamespace(path, open) } ?? open()
        guard descriptor >= 0 else { throw .system("TAP \(name) (TUNSETIFF)", errno: -descriptor) }
        fd = descriptor
        interfaceName = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        port = FramePort(queueCapacity: 1024)
        port.onWork = { [weak self] in self?.flushToTAP() }
        port.attach(attachment)
        guard startThread({ [self] in readLoop() }) else {
            throw .system("starting the TAP \(name) reader thread", errno: errno)
        }
    }

    deinit { close() }

    /// Stops reading, detaches the port and closes the TAP (the interface goes away unless it was persistent).
    public func close() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        for _ in 0..<1000 where !readerDone.load(ordering: .acquiring) { usleep(1000) }
        port.onWork = nil
        port.detach()
        writeLock.withLock { _ in Glibc.close(fd) }
    }

    /// Frames read from the TAP, frames written to it, and frames the TAP refused.
    public var counters: [Counter] {
        [
            Counter("tap_frames_in", framesIn.load(ordering: .relaxed)),
            Counter("tap_frames_out", framesOut.load(ordering: .relaxed)),
            Counter("tap_drop_write", writeDrops.load(ordering: .relaxed)),
        ]
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 65_536 + 64)
        while running.load(ordering: .acquiring) {
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 100) > 0 else { continue }
            // A bounded batch per wakeup, so a flood cannot starve the stop flag.
            for _ in 0..<256 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                framesIn.add(1, ordering: .relaxed)
                buffer.withUnsafeBytes { port.transmit(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
            flushToTAP()
        }
        readerDone.store(true, ordering: .releasing)
    }

    private func flushToTAP() {
        port.acknowledgeWork()
        writeLock.withLock { _ in
            guard running.load(ordering: .acquiring) else { return }
            for _ in 0..<4096 {
                guard let frame = port.nextInbound() else { break }
                let written = frame.bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if written == frame.bytes.count {
                    framesOut.add(1, ordering: .relaxed)
                } else {
                    writeDrops.add(1, ordering: .relaxed)
                }
            }
        }
    }
}

/// Runs `body` on the calling thread inside the network namespace at `path`, then moves the thread back to its own
/// namespace (so sockets it makes later land there). Throws when either move fails.
func withNetworkNamespace<R>(_ path: String, _ body: () -> R) throws(NATError) -> R {
    let target = open(path, O_RDONLY | O_CLOEXEC)
    guard target >= 0 else { throw .system("open network namespace \(path)", errno: errno) }
    defer { Glibc.close(target) }
    let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
    guard home >= 0 else { throw .system("open /proc/thread-self/ns/net", errno: errno) }
    defer { Glibc.close(home) }
    let entered = cnet_setns_net(target)
    guard entered == 0 else { throw .system("setns \(path)", errno: -entered) }
    let result = body()
    let returned = cnet_setns_net(home)
    guard returned == 0 else { throw .system("setns back to the original namespace", errno: -returned) }
    return result
}
