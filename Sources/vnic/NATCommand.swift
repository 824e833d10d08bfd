import Foundation
import Glibc
import NICCore
import NetBackend

/// `vnic nat --tap NAME ...`: a TAP interface as the guest of a NAT engine, until SIGINT or SIGTERM.
enum NATCommand {
    static let help = """
        usage: vnic nat --tap NAME [--netns PATH] [--forward RULE]... [--mtu N] [--cidr CIDR] [--dns IP[:PORT]]...
                        [--allow CIDR]... [--localhost-reachable] [--restrict] [--domain NAME] [--tftp-root DIR]

        Creates the TAP interface NAME (inside the network namespace PATH, e.g. /run/netns/guest, when given),
        leaves it down for the namespace to configure or to run DHCP on, and runs a NAT engine behind it
        (VirtualBox addressing: 10.0.2.0/24, gateway .2, DNS .3, DHCP from .15) until SIGINT or SIGTERM, then
        prints its counters.

          --forward RULE          name,tcp|udp,[hostip],hostport,[guestip],guestport (repeatable)
          --mtu N                 576...65520 (default 1500)
          --cidr CIDR             the guest network, e.g. 192.168/16 (default 10.0.2.0/24)
          --dns IP[:PORT]         resolver for the DNS proxy (repeatable; default: /etc/resolv.conf)
          --allow CIDR            a destination always allowed, restrict mode too (repeatable)
          --localhost-reachable   the gateway address reaches host loopback
          --restrict              only forwarded and --allow destinations
          --domain NAME           the domain name DHCP hands out
          --tftp-root DIR         serve DIR read-only over TFTP at the gateway (DHCP names it)
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            print(help)
            return 0
        }
        var tap: String?
        var namespace: String?
        var configuration = NATConfiguration()
        var resolvers: [IPv4Endpoint] = []
        var index = 0
        func value(_ option: String) throws(CommandLineError) -> String {
            index += 1
            guard index < arguments.count else { throw CommandLineError(message: "nat: \(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let option = arguments[index]
            switch option {
            case "--tap": tap = try value(option)
            case "--netns": namespace = try value(option)
            case "--forward":
                let text = try value(option)
                do {
                    configuration.portForwards.append(try PortForwardRule(parsing: text))
                } catch {
                    throw CommandLineError(message: "nat: \(error)")
                }
            case "--mtu":
                let text = try value(option)
                guard let mtu = Int(text) else {
                    throw CommandLineError(message: "nat: --mtu '\(text)' is not a number")
                }
                configuration.mtu = mtu
            case "--cidr":
                let text = try value(option)
                guard let network = IPv4Network(text) else {
                    throw CommandLineError(message: "nat: --cidr '\(text)' is not an IPv4 CIDR")
                }
                let mtu = configuration.mtu
                let forwards = configuration.portForwards
                configuration = NATConfiguration(network: network)
                configuration.mtu = mtu
                configuration.portForwards = forwards
            case "--dns":
                let text = try value(option)
                guard let resolver = IPv4Endpoint(text, defaultPort: 53) else {
                    throw CommandLineError(message: "nat: --dns '\(text)' is not IP or IP:PORT")
                }
                resolvers.append(resolver)
            case "--allow":
                let text = try value(option)
                guard let network = IPv4Network(text) else {
                    throw CommandLineError(message: "nat: --allow '\(text)' is not an IPv4 CIDR")
                }
                configuration.allowedDestinations.append(network)
            case "--localhost-reachable": configuration.localhostReachable = true
            case "--restrict": configuration.restrict = true
            case "--domain": configuration.domainName = try value(option)
            case "--tftp-root": configuration.tftpRoot = try value(option)
            default: throw CommandLineError(message: "nat: unknown argument '\(option)'")
            }
            index += 1
        }
        guard let tap else { throw CommandLineError(message: "nat: --tap NAME is required") }
        if !resolvers.isEmpty { configuration.dnsServers = resolvers }

        // Block the stop signals before any thread starts, so every thread inherits the mask and sigwait gets them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let nat: NATAttachment
        let frontEnd: TAPFrontEnd
        do {
            nat = try NATAttachment(configuration: configuration)
            frontEnd = try TAPFrontEnd(name: tap, networkNamespace: namespace, attachment: nat)
        } catch {
            throw CommandLineError(message: "nat: \(error)", status: 1)
        }
        print(
            "vnic nat: \(frontEnd.interfaceName) on \(configuration.network), gateway \(configuration.gateway), "
                + "DNS \(configuration.dnsAddress), \(configuration.portForwards.count) forward(s); SIGINT or SIGTERM stops"
        )
        fflush(nil)
        var received: Int32 = 0
        sigwait(&signals, &received)
        frontEnd.close()
        nat.close()
        for counter in (frontEnd.counters + nat.counters) where counter.value != 0 { print(counter) }
        return 0
    }
}
