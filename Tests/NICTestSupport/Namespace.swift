import Foundation
import Glibc

/// A network namespace a test makes for itself (`ip netns add`), named after the test and its pid so concurrent runs
/// never share one. The test removes it when done (`defer { namespace.remove() }`): a namespace outlives the process
/// that made it.
public struct TestNamespace: Sendable {
    /// The name `ip netns` knows it by.
    public let name: String

    /// The namespace's file, for `setns` and for moving a TAP into it.
    public var path: String { "/run/netns/\(name)" }

    /// Makes a namespace named `prefix-PID-RANDOM`; throws the `ip` command's output when it fails.
    public init(prefix: String) throws {
        name = "\(prefix)-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let made = shell(["ip", "netns", "add", name])
        guard made.status == 0 else { throw TestNamespaceError(message: "ip netns add \(name): \(made.output)") }
    }

    /// Runs `arguments` inside the namespace (`ip netns exec`), bounded by `timeout` seconds.
    @discardableResult
    public func run(_ arguments: [String], timeout: Double = 15) -> (status: Int32, output: String) {
        shell(command(arguments), timeout: timeout)
    }

    /// The command line that runs `arguments` inside the namespace, for a process that runs beside the test.
    public func command(_ arguments: [String]) -> [String] { ["ip", "netns", "exec", name] + arguments }

    /// Deletes the namespace.
    public func remove() { shell(["ip", "netns", "del", name]) }
}

/// A namespace could not be made.
public struct TestNamespaceError: Error, CustomStringConvertible {
    /// What `ip` said.
    public var message: String
    public var description: String { message }
}
