import CNetShims
import Glibc

/// Running code on the calling thread inside another network namespace.
public enum NetworkNamespace {
    /// Moves the calling thread into the network namespace at `path` (`/run/netns/NAME` or `/proc/PID/ns/net`), runs
    /// `body`, and moves the thread back to the namespace it was in, whether `body` threw or not. Descriptors `body`
    /// opens (a TAP, sockets) keep living in the namespace they were made in. Throws, naming the path, when the
    /// namespace cannot be opened or entered, or the thread cannot go back.
    public static func perform<R>(
        in path: String, _ body: () throws(HostLinkError) -> R
    ) throws(HostLinkError) -> R {
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw .system("network namespace \(path): open", errno: errno) }
        defer { close(target) }
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard home >= 0 else { throw .system("network namespace: open /proc/thread-self/ns/net", errno: errno) }
        defer { close(home) }
        let entered = cnet_setns_net(target)
        guard entered == 0 else {
            if -entered == EINVAL { throw .invalid("network namespace \(path): not a network namespace") }
            throw .system("network namespace \(path): setns", errno: -entered)
        }
        let result = Result<R, HostLinkError> { () throws(HostLinkError) -> R in try body() }
        let returned = cnet_setns_net(home)
        guard returned == 0 else {
            throw .system("network namespace \(path): setns back to the thread's own namespace", errno: -returned)
        }
        return try result.get()
    }
}
