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
        if let fixed = fixedRoute(to: destination, port: port, proto: proto) { return fixed }
        if isAllowedDestination(destination) { return .host(IPEndpoint(destination, port)) }
        if destination.isLoopback { return .deny(.dropPolicyLoopback) }
        if config.restrict { return .deny(.dropPolicyDenied) }
        return .host(IPEndpoint(destination, port))
    }

    /// The routes the address alone decides. IPv4: the DNS proxy, the gateway, and the guest network, multicast,
    /// reserved and "this network" going nowhere. IPv6: `::3` is the DNS proxy, `::2` host `::1` (with
    /// `localhostReachable`), the guest's own prefix, link-local, multicast and addresses with IPv4 inside (which a
    /// host socket would send as IPv4, loopback included) go nowhere; `::1` only when an allowed prefix lists it.
    private func fixedRoute(to destination: IPAddress, port: UInt16, proto: UInt8) -> Route? {
        let loopback: IPAddress
        switch destination {
        case .v4(let address):
            if address == config.dnsAddress { return routeToResolver(port: port, proto: proto) }
            guard address != config.gateway else {
                loopback = .v4(.loopback)
                break
            }
            if config.network.contains(address) || address.isMulticast || address.isReserved || address.isThisNetwork {
                return .deny(.dropIPDestination)
            }
            return nil
        case .v6(let address):
            if address == config.dnsAddress6 { return routeToResolver(port: port, proto: proto) }
            guard address != config.gateway6, address != config.gatewayLinkLocal else {
                loopback = .v6(.loopback)
                break
            }
            if config.prefix6.contains(address) || address.isMulticast || address.isLinkLocal || address.isUnspecified
                || (address.isIPv4Embedded && !address.isLoopback)
            {
                return .deny(.dropIPDestination)
            }
            return nil
        }
        guard config.localhostReachable else { return .deny(.dropPolicyLoopback) }
        return .host(IPEndpoint(loopback, port))
    }

    /// Whether an allowed prefix of `destination`'s family lists it.
    private func isAllowedDestination(_ destination: IPAddress) -> Bool {
        switch destination {
        case .v4(let address): return config.allowedDestinations.contains { $0.contains(address) }
        case .v6(let address): return config.allowedDestinations6.contains { $0.contains(address) }
        }
    }

    /// The DNS proxy: port 53 only, to the first configured resolver.
    private func routeToResolver(port: UInt16, proto: UInt8) -> Route {
        guard port == WellKnownPort.dns.rawValue, proto == IPProtocolNumber.udp || proto == IPProtocolNumber.tcp else {
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
