import Synchronization

/// Hands out ``InternalNetwork``s by name: the same name always gives the same network, and networks of different
/// names never see each other's frames.
///
/// Networks live as long as the hub. Use ``shared`` for one process-wide namespace, as VirtualBox has, or create
/// separate hubs to keep test cases or tenants apart.
public final class InternalNetworkHub: Sendable {
    /// A process-wide hub for hosts that want one namespace of network names.
    public static let shared = InternalNetworkHub()

    private let networks = Mutex<[String: InternalNetwork]>([:])
    private let macTableCapacity: Int

    /// Creates an empty hub whose networks bound their MAC tables at `macTableCapacity` entries.
    public init(macTableCapacity: Int = InternalNetwork.defaultMACTableCapacity) {
        self.macTableCapacity = macTableCapacity
    }

    /// The network called `name`, created on first use with the ``PromiscuousPolicy/deny`` policy.
    public func network(named name: String) -> InternalNetwork {
        networks.withLock { networks in
            if let existing = networks[name] { return existing }
            let network = InternalNetwork(name: name, macTableCapacity: macTableCapacity)
            networks[name] = network
            return network
        }
    }

    /// The names of the networks created so far, sorted.
    public var networkNames: [String] { networks.withLock { $0.keys.sorted() } }
}
