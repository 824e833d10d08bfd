import Glibc

/// Errors a host link (a TAP device, a network namespace, a stream socket) reports; each names the device, path or
/// address it was working on.
public enum HostLinkError: Error, Equatable, CustomStringConvertible {
    /// An argument is invalid (a name too long, a path that does not fit a socket address).
    case invalid(String)
    /// A system call failed while doing `what`.
    case system(String, errno: Int32)

    public var description: String {
        switch self {
        case .invalid(let text): return text
        case .system(let what, let code):
            return "\(what): \(String(cString: strerror(code))) (errno \(code))\(Self.hint(code))"
        }
    }

    private static func hint(_ code: Int32) -> String {
        switch code {
        case EPERM, EACCES: return "; this needs root (CAP_NET_ADMIN, and CAP_SYS_ADMIN for a namespace)"
        default: return ""
        }
    }
}

extension HostLinkError {
    /// The error of an event loop's failed system call.
    init(_ error: EventLoopError) { self = .system(error.what, errno: error.code) }
}

extension EventLoopThread {
    /// A host link's thread, named `name` in errors.
    static func hostLink(named name: String) throws(HostLinkError) -> EventLoopThread {
        do {
            return try EventLoopThread(name: name)
        } catch {
            throw HostLinkError(error)
        }
    }

    /// Starts a host link's thread: `body` has no timers, so each wait lasts at most five seconds.
    func startHostLink(_ body: @escaping @Sendable ([(Int32, UInt32)]) -> Void) throws(HostLinkError) {
        do {
            try start { ready in
                body(ready)
                return 5_000
            }
        } catch {
            throw HostLinkError(error)
        }
    }
}
