import Foundation
import Glibc
import NICCore
import NetBackend

/// `vnic nat --tap NAME ... | --stream ADDRESS ...`: a TAP interface or a QEMU `-netdev stream` socket as the guest
/// of a NAT engine, until SIGINT or SIGTERM.
enum NATCommand {
    static var help: String {
        """
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

        options (the same as the attachment setting nat:NAME=VALUE;NAME...):
        \(NATOptions.flagHelp)
          --no-offload            --tap without checksum and TCP segmentation offload: every frame is MTU-sized
                                  (by default the namespace sends and receives TCP segments up to 64 KiB)

        Bad arguments exit 2; a NAT or guest link that cannot start exits 1.
        """
    }

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
        var nat = NATOptions()
        var index = 0
        func value(_ option: String) throws(CommandLineError) -> String {
            index += 1
            guard index < arguments.count else { throw CommandLineError(message: "nat: \(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            do {
                if try nat.apply(flagAt: &index, in: arguments) {
                    index += 1
                    continue
                }
            } catch {
                throw CommandLineError(message: "nat: " + error.description(optionPrefix: "--"))
            }
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
            case "--no-offload": options.offloads = false
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
        do {
            options.configuration = try nat.configuration()
        } catch {
            throw CommandLineError(message: "nat: \(error)")
        }
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
