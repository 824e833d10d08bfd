import CNetShims
import Glibc

/// A port on a VDE switch, opened with libvdeplug's version-3 protocol (written here from the wire format, not
/// linked): a control stream to `DIR/ctl` carrying one request, the switch's reply naming its data socket, and a
/// datagram socket of ours, bound in the switch's folder and connected to the switch's. One datagram is one frame.
/// Closing the control stream gives the port back.
package struct VDEConnection {
    /// The control stream (non-blocking once open): its end means the switch is gone.
    let control: Int32
    /// The datagram socket frames travel on (non-blocking).
    let data: Int32
    /// Where our datagram socket is bound; unlinked when the port closes.
    let path: String
    /// The switch port we were given.
    let port: Int

    /// The request's magic number and protocol version.
    static let magic: UInt32 = 0xFEED_FACE
    static let version: UInt32 = 3
    /// How long the switch may take to answer.
    static let replyTimeoutSeconds = 2
    /// The longest description the switch stores.
    static let maximumDescription = 128

    /// Connects to the switch and asks for a port. `sequence` numbers our socket paths (bumped per attempt). Throws,
    /// naming the switch, when there is no switch, it refuses the request, or its reply is malformed.
    static func open(_ configuration: VDEConfiguration, sequence: inout Int) throws(HostLinkError) -> VDEConnection {
        let name = "vde \(configuration.directory)"
        guard let switchAddress = UnixSocketAddress.make(configuration.controlPath) else {
            throw .invalid("\(name): the control socket path is too long")
        }
        let control = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard control >= 0 else { throw .system("\(name): socket", errno: errno) }
        var keep = false
        defer { if !keep { Glibc.close(control) } }
        guard UnixSocketAddress.with(switchAddress, { connect(control, $0, $1) }) == 0 else {
            throw .system("\(name): connect to \(configuration.controlPath) (is vde_switch running?)", errno: errno)
        }
        let (data, path) = try bindDataSocket(configuration, sequence: &sequence)
        defer {
            if !keep {
                Glibc.close(data)
                unlink(path)
            }
        }
        let request = Self.request(port: configuration.port ?? 0, path: path)
        guard request.withUnsafeBytes({ send(control, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else { throw .system("\(name): sending the request", errno: errno) }
        let reply = try readReply(control, name: name)
        guard let switchPath = UnixSocketAddress.path(in: reply), let switchData = UnixSocketAddress.make(switchPath)
        else { throw .invalid("\(name): the switch's reply is not a unix socket address") }
        guard UnixSocketAddress.with(switchData, { connect(data, $0, $1) }) == 0 else {
            throw .system("\(name): connect to the switch's data socket \(switchPath)", errno: errno)
        }
        let flags = fcntl(control, F_GETFL)
        _ = fcntl(control, F_SETFL, flags | O_NONBLOCK)
        keep = true
        return VDEConnection(control: control, data: data, path: path, port: Self.port(inDataPath: switchPath) ?? 0)
    }

    /// Closes both sockets and removes ours from the switch's folder.
    func close() {
        Glibc.close(data)
        Glibc.close(control)
        unlink(path)
    }

    /// A datagram socket bound to `DIR/.PID-N`, as libvdeplug names its own.
    private static func bindDataSocket(_ configuration: VDEConfiguration, sequence: inout Int) throws(HostLinkError)
        -> (Int32, String)
    {
        let name = "vde \(configuration.directory)"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("\(name): socket", errno: errno) }
        var lastError: Int32 = 0
        for _ in 0..<64 {
            sequence += 1
            let path =
                configuration.directory + "/." + padded(Int(getpid()) % 100_000) + "-" + padded(sequence % 100_000)
            guard let address = UnixSocketAddress.make(path) else {
                Glibc.close(fd)
                throw .invalid("\(name): our data socket's path \(path) is too long")
            }
            if UnixSocketAddress.with(address, { bind(fd, $0, $1) }) == 0 { return (fd, path) }
            lastError = errno
            guard lastError == EADDRINUSE else { break }
        }
        Glibc.close(fd)
        throw .system("\(name): binding our data socket in the switch's folder", errno: lastError)
    }

    private static func padded(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// The request: magic, version, type (a new control port, the port wanted in bits 8 and up), our data socket's
    /// address, and a description of who asks. Host byte order, as the switch reads it.
    static func request(port: Int, path: String) -> [UInt8] {
        var bytes: [UInt8] = []
        func append(_ value: UInt32) { withUnsafeBytes(of: value) { bytes += $0 } }
        append(magic)
        append(version)
        append(UInt32(truncatingIfNeeded: port) << 8)
        if let address = UnixSocketAddress.make(path) { withUnsafeBytes(of: address) { bytes += $0 } }
        let description = "vnic user=\(getuid()) PID=\(getpid())"
        bytes += description.utf8.prefix(maximumDescription)
        return bytes
    }

    /// Reads the switch's reply, one `sockaddr_un`, waiting at most ``replyTimeoutSeconds``.
    private static func readReply(_ control: Int32, name: String) throws(HostLinkError) -> [UInt8] {
        var timeout = timeval(tv_sec: replyTimeoutSeconds, tv_usec: 0)
        setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply = [UInt8](repeating: 0, count: UnixSocketAddress.size)
        var filled = 0
        while filled < reply.count {
            let count = reply.withUnsafeMutableBytes { raw in
                recv(control, raw.baseAddress.map { $0 + filled }, raw.count - filled, 0)
            }
            if count > 0 {
                filled += count
                continue
            }
            if count < 0, errno == EINTR { continue }
            if count == 0 || errno == ECONNRESET {
                throw .invalid(
                    "\(name): the switch closed the connection instead of answering (port refused or taken?)")
            }
            throw .system("\(name): waiting for the switch's answer", errno: errno)
        }
        return reply
    }

    /// The port in the switch's data socket path, `DIR/NNN.FD`.
    package static func port(inDataPath path: String) -> Int? {
        guard let name = path.split(separator: "/").last, let dot = name.firstIndex(of: ".") else { return nil }
        return Int(name[..<dot])
    }
}
