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
