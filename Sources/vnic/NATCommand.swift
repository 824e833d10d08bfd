import Foundation
import Glibc
import NICCore
import NetBackend

/// `vnic nat --tap NAME ... | --stream ADDRESS ...`: a TAP interface or a QEMU `-netdev stream` socket as the guest
/// of a NAT engine, until SIGINT or SIGTERM.
enum NATCommand {
    static let help = """
        usage: vnic nat --tap NAME [--netns PATH] [OPTIONS]
               vnic nat --stream unix:PATH|tcp:127.0.0.1:PORT [OPTIONS]

        Runs a NAT engine (VirtualBox addressing: 10.0.2.0/24, gateway .2, DNS .3, DHCP from .15; IPv6
        fd17:625c:f037:2::/64 by SLAAC, gateway ::2, DNS ::3) for one guest until SIGINT or SIGTERM, then prints its
        counters. The guest is either
          --tap NAME              the TAP interface NAME, created (inside the network namespace PATH when --netns
                                  names one, e.g. /run/netns/guest or /proc/PID/ns/net) and left down for the
                                  namespace to configure or to run DHCP on (needs root); or
          --stream ADDRESS        a server socket speaking QEMU's -netdev stream framing, one client at a time:
                                  unix:PATH  for  -netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH
                                  tcp:127.0.0.1:PORT  for  ...,addr.type=inet,addr.host=127.0.0.1,addr.port=PORT

        options:
          --forward RULE          name,tcp|udp,[hostip],hostport,[guestip],guestport (repeatable; an IPv6 host or
                                  guest ip, bare or in brackets, makes an IPv6 rule: web6,tcp,[::1],8080,,80)
          --mtu N                 576...65520 (default 1500)
          --cidr CIDR             the guest network, e.g. 192.168/16 (default 10.0.2.0/24)
          --cidr6 PREFIX/64       the guest's IPv6 prefix (default fd17:625c:f037:2::/64)
          --no-ipv6               IPv4 only: no router advertisements, IPv6 frames dropped
          --dns IP[:PORT]         resolver for the DNS proxy, IPv4 or IPv6 ([::1]:53) (repeatable;
                                  default: /etc/resolv.conf)
          --allow CIDR            a destination always allowed, restrict mode too (repeatable; IPv4 or IPv6)
          --localhost-reachable   the gateway address reaches host loopback
          --restrict              only forwarded and --allow destinations
          --domain NAME           the domain name DHCP hands out
          --tftp-root DIR         serve DIR read-only over TFTP at the gateway (DHCP names it)
          --no-offload            --tap without checksum and TCP segmentation offload: every frame is MTU-sized
                                  (by default the namespace sends and receives TCP segments up to 64 KiB)

        Bad arguments exit 2; a NAT or guest link that cannot start exits 1.
        """

    /// What the arguments ask for.
    struct Options {
        var tap: String?
        var namespace: String?
        var stream: StreamAddress?
        var offloads = true
        var configuration = NATConfiguration()
    }

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        let options = try parse(arguments)
        return try serve(options)
    }

    /// Parses the arguments; a bad one is an error naming it (exit 2).
    static func parse(_ arguments: [String]) throws(CommandLineError) -> Options {
        var options = Options()
        var network: IPv4Network?
        var mtu: Int?
        var resolvers: [IPEndpoint] = []
        var forwards: [PortForwardRule] = []
        var allowed: [IPv4Network] = []
        var allowed6: [IPv6Network] = []
        var prefix6: IPv6Network?
        var ipv6 = true
        var localhostReachable = false
        var restrict = false
        var domain: String?
        var tftpRoot: String?
        var index = 0
        func value(_ option: String) throws(CommandLineError) -> String {
            index += 1
            guard index < arguments.count else { throw CommandLineError(message: "nat: \(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let option = arguments[index]
            switch option {
            case "--tap":
                let name = try value(option)
                do {
                    try TapDevice.validate(name: name)
                } catch {
                    throw CommandLineError(message: "nat: --tap: \(error)")
                }
                options.tap = name
            case "--netns": options.namespace = try value(option)
            case "--stream":
                let text = try value(option)
                guard let address = StreamAddress(text) else {
                    throw CommandLineError(message: "nat: --stream '\(text)' is not unix:PATH or tcp:IP:PORT")
                }
                if case .tcp(let endpoint) = address, endpoint.address.rawValue >> 24 != 127 {
                    throw CommandLineError(
                        message: "nat: --stream '\(text)': only loopback TCP addresses are supported "
                            + "(the socket carries the guest's raw frames)")
                }
                options.stream = address
            case "--forward":
                let text = try value(option)
                do {
                    forwards.append(try PortForwardRule(parsing: text))
                } catch {
                    throw CommandLineError(message: "nat: --forward: \(error)")
                }
            case "--mtu":
                let text = try value(option)
                guard let parsed = Int(text), (576...65_520).contains(parsed) else {
                    throw CommandLineError(message: "nat: --mtu '\(text)' is not a number in 576...65520")
                }
                mtu = parsed
            case "--cidr":
                let text = try value(option)
                guard let parsed = IPv4Network(text) else {
                    throw CommandLineError(message: "nat: --cidr '\(text)' is not an IPv4 CIDR")
                }
                network = parsed
            case "--cidr6":
                let text = try value(option)
                guard text.contains("/"), let parsed = IPv6Network(text), parsed.prefixLength == 64 else {
                    throw CommandLineError(message: "nat: --cidr6 '\(text)' is not an IPv6 /64 prefix")
                }
                prefix6 = parsed
            case "--no-ipv6": ipv6 = false
            case "--dns":
                let text = try value(option)
                guard let resolver = IPEndpoint(text, defaultPort: 53) else {
                    throw CommandLineError(message: "nat: --dns '\(text)' is not IP, IP:PORT, IPV6 or [IPV6]:PORT")
                }
                resolvers.append(resolver)
            case "--allow":
                let text = try value(option)
                if let parsed = IPv4Network(text) {
                    allowed.append(parsed)
                } else if let parsed = IPv6Network(text) {
                    allowed6.append(parsed)
                } else {
                    throw CommandLineError(message: "nat: --allow '\(text)' is not an IPv4 or IPv6 CIDR")
                }
            case "--localhost-reachable": localhostReachable = true
            case "--no-offload": options.offloads = false
            case "--restrict": restrict = true
            case "--domain": domain = try value(option)
            case "--tftp-root":
                let text = try value(option)
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), isDirectory.boolValue
                else {
                    throw CommandLineError(message: "nat: --tftp-root '\(text)' is not a directory")
                }
                tftpRoot = text
            default: throw CommandLineError(message: "nat: unknown argument '\(option)'")
            }
            index += 1
        }
        switch (options.tap, options.stream) {
        case (nil, nil): throw CommandLineError(message: "nat: --tap NAME or --stream ADDRESS is required")
        case (.some, .some): throw CommandLineError(message: "nat: --tap and --stream cannot be combined")
        case (nil, .some) where options.namespace != nil:
            throw CommandLineError(message: "nat: --netns goes with --tap only")
        default: break
        }
        var configuration = network.map { NATConfiguration(network: $0) } ?? NATConfiguration()
        if let mtu { configuration.mtu = mtu }
        if !resolvers.isEmpty { configuration.dnsServers = resolvers }
        configuration.portForwards = forwards
        configuration.allowedDestinations = allowed
        configuration.allowedDestinations6 = allowed6
        configuration.ipv6 = ipv6
        if let prefix6 { configuration.prefix6 = prefix6 }
        configuration.localhostReachable = localhostReachable
        configuration.restrict = restrict
        configuration.domainName = domain
        configuration.tftpRoot = tftpRoot
        do {
            try configuration.validate()
        } catch {
            throw CommandLineError(message: "nat: \(error)")
        }
        options.configuration = configuration
        return options
    }

    /// Starts the NAT and its guest link, waits for SIGINT or SIGTERM, stops both and prints the counters.
    static func serve(_ options: Options) throws(CommandLineError) -> Int32 {
        // Block the stop signals before any thread starts, so every thread inherits the mask and sigwait gets them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let configuration = options.configuration
        let nat: NATAttachment
        do {
            nat = try NATAttachment(configuration: configuration)
        } catch {
            throw CommandLineError(message: "nat: \(error)", status: 1)
        }
        let guest: String
        let stop: () -> [Counter]
        do {
            if let tap = options.tap {
                let link = try TapLink(
                    name: tap, networkNamespace: options.namespace, offloads: options.offloads, attachment: nat)
                guest = "TAP \(link.device.name)" + (options.namespace.map { " in \($0)" } ?? "")
                stop = {
                    link.close()
                    return link.counters
                }
            } else if let address = options.stream {
                let link = try StreamLink(listeningOn: address, attachment: nat)
                guest = "stream \(link.address)"
                stop = {
                    link.close()
                    return link.counters
                }
            } else {
                throw HostLinkError.invalid("no guest link")
            }
        } catch {
            nat.close()
            throw CommandLineError(message: "nat: \(error)", status: 1)
        }
        print(
            "vnic nat: \(guest) on \(configuration.network), gateway \(configuration.gateway), "
                + "DNS \(configuration.dnsAddress)"
                + (configuration.ipv6
                    ? "; IPv6 \(configuration.prefix6), gateway \(configuration.gateway6), DNS \(configuration.dnsAddress6)"
                    : "") + "; \(configuration.portForwards.count) forward(s); "
                + "SIGINT or SIGTERM stops")
        fflush(nil)
        var received: Int32 = 0
        sigwait(&signals, &received)
        let linkCounters = stop()
        nat.close()
        print("vnic nat: stopped by \(received == SIGINT ? "SIGINT" : "SIGTERM"); counters (non-zero):")
        for counter in linkCounters + nat.counters where counter.value != 0 { print("  \(counter)") }
        fflush(nil)
        return 0
    }
}
