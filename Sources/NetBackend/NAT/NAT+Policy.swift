extension NATEngine {
    /// Where a guest packet to `destination:port` goes on the host, or why it may not.
    enum Route: Equatable {
        /// Send it to this host endpoint.
        case host(IPv4Endpoint)
        /// Refuse it; the counter says why.
        case deny(NATCounter)
    }

    /// Decides where traffic from the guest to `destination:port` goes: the DNS proxy to the configured resolver,
    /// the gateway to host loopback (only with `localhostReachable`), allowed destinations as they are, and
    /// everything else unless `restrict` is set.
    func route(to destination: IPv4Address, port: UInt16, proto: UInt8) -> Route {
        if destination == config.dnsAddress {
            guard port == 53, proto != IPProtocolNumber.icmp else { return .deny(.dropPortClosed) }
            guard let server = config.dnsServers.first else { return .deny(.dnsNoServer) }
            return .host(server)
        }
        if destination == config.gateway {
            guard config.localhostReachable else { return .deny(.dropPolicyLoopback) }
            return .host(IPv4Endpoint(.loopback, port))
        }
        if config.network.contains(destination) || destination.isMulticast || destination.isReserved
            || destination.isThisNetwork
        {
            return .deny(.dropIPDestination)
        }
        if config.allowedDestinations.contains(where: { $0.contains(destination) }) {
            return .host(IPv4Endpoint(destination, port))
        }
        if destination.isLoopback { return .deny(.dropPolicyLoopback) }
        if config.restrict { return .deny(.dropPolicyDenied) }
        return .host(IPv4Endpoint(destination, port))
    }
}
