import NICCore

extension NATEngine {
    /// Where a guest packet to `destination:port` goes on the host, or why it may not.
    enum Route: Equatable {
        /// Send it to this host endpoint.
        case host(IPEndpoint)
        /// Refuse it; the counter says why.
        case deny(NATCounter)
    }

    /// Decides where traffic from the guest to `destination:port` goes: the DNS proxy to the configured resolver,
    /// the gateway to host loopback (only with `localhostReachable`), allowed destinations as they are, and
    /// everything else unless `restrict` is set.
    func route(to destination: IPAddress, port: UInt16, proto: UInt8) -> Route {
        switch destination {
        case .v4(let address): return route(to: address, port: port, proto: proto)
        case .v6(let address): return route6(to: address, port: port, proto: proto)
        }
    }

    func route(to destination: IPv4Address, port: UInt16, proto: UInt8) -> Route {
        if destination == config.dnsAddress {
            return routeToResolver(port: port, proto: proto)
        }
        if destination == config.gateway {
            guard config.localhostReachable else { return .deny(.dropPolicyLoopback) }
            return .host(IPEndpoint(.v4(.loopback), port))
        }
        if config.network.contains(destination) || destination.isMulticast || destination.isReserved
            || destination.isThisNetwork
        {
            return .deny(.dropIPDestination)
        }
        if config.allowedDestinations.contains(where: { $0.contains(destination) }) {
            return .host(IPEndpoint(.v4(destination), port))
        }
        if destination.isLoopback { return .deny(.dropPolicyLoopback) }
        if config.restrict { return .deny(.dropPolicyDenied) }
        return .host(IPEndpoint(.v4(destination), port))
    }

    /// The IPv6 rules: `::3` is the DNS proxy, `::2` host `::1` (with `localhostReachable`), the guest's own prefix,
    /// link-local, multicast and addresses with IPv4 inside (which a host socket would send as IPv4, loopback
    /// included) go nowhere; `::1` only when an allowed prefix lists it.
    func route6(to destination: IPv6Address, port: UInt16, proto: UInt8) -> Route {
        if destination == config.dnsAddress6 {
            return routeToResolver(port: port, proto: proto)
        }
        if destination == config.gateway6 || destination == config.gatewayLinkLocal {
            guard config.localhostReachable else { return .deny(.dropPolicyLoopback) }
            return .host(IPEndpoint(.v6(.loopback), port))
        }
        if config.prefix6.contains(destination) || destination.isMulticast || destination.isLinkLocal
            || destination.isUnspecified || (destination.isIPv4Embedded && !destination.isLoopback)
        {
            return .deny(.dropIPDestination)
        }
        if config.allowedDestinations6.contains(where: { $0.contains(destination) }) {
            return .host(IPEndpoint(.v6(destination), port))
        }
        if destination.isLoopback { return .deny(.dropPolicyLoopback) }
        if config.restrict { return .deny(.dropPolicyDenied) }
        return .host(IPEndpoint(.v6(destination), port))
    }

    /// The DNS proxy: port 53 only, to the first configured resolver.
    private func routeToResolver(port: UInt16, proto: UInt8) -> Route {
        guard port == 53, proto == IPProtocolNumber.udp || proto == IPProtocolNumber.tcp else {
            return .deny(.dropPortClosed)
        }
        guard let server = config.dnsServers.first else { return .deny(.dnsNoServer) }
        return .host(server)
    }

    /// Whether a guest may use `address` as the source of a flow through the NAT: an address of its IPv4 network
    /// (not 0.0.0.0), or of its IPv6 prefix.
    func isGuestSource(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let address): return address != .any
        case .v6(let address): return isGuestPrefixAddress(address)
        }
    }

    /// Whether `address` is a guest's address in the IPv6 prefix: not the gateway's, the DNS proxy's, or the
    /// subnet-router anycast address.
    func isGuestPrefixAddress(_ address: IPv6Address) -> Bool {
        config.prefix6.contains(address) && address != config.gateway6 && address != config.dnsAddress6
            && address.low != 0
    }

    /// Whether `address` names one host (not broadcast or multicast).
    func isUnicast(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let address):
            return !address.isMulticast && address != .broadcast && address != config.network.broadcast
        case .v6(let address):
            return !address.isMulticast && !address.isUnspecified
        }
    }
}
