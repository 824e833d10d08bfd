import Glibc
import NICCore

extension NATOptions {
    /// Every NAT option, in the order help lists them.
    public static let table: [NATOption] = [
        NATOption(
            name: "forward", argument: "RULE", repeatable: true,
            help: [
                "name,tcp|udp,[hostip],hostport,[guestip],guestport (repeatable; an IPv6 host or",
                "guest ip, bare or in brackets, makes an IPv6 rule: web6,tcp,[::1],8080,,80)",
            ],
            example: "web,tcp,127.0.0.1,18080,,80", rejecting: ["x", "ssh,tcp,,99999,,22"]
        ) { options, value in
            do throws(NATError) { options.portForwards.append(try PortForwardRule(parsing: value)) } catch {
                return error.description
            }
            return nil
        },
        NATOption(
            name: "mtu", argument: "N", range: 576...65_520, help: ["576...65520 (default 1500)"], example: "9000"
        ) { options, value in
            number(value, name: "mtu", in: 576...65_520).map { options.mtu = $0 }.reason
        },
        NATOption(
            name: "slot", argument: "N", range: 0...253,
            help: ["VirtualBox's network for card slot N: 10.0.(N+2).0/24, fd17:625c:f037:(N+2)::/64"], example: "1"
        ) { options, value in
            number(value, name: "slot", in: 0...253).map {
                options.slot = $0
                options.network = nil
            }.reason
        },
        .value(
            "cidr", argument: "CIDR", help: ["the guest network, e.g. 192.168/16 (default 10.0.2.0/24)"],
            example: "192.168/16", rejecting: ["10.0.2.0/33", "example"],
            parse: { text -> IPv4Network? in IPv4Network(text) }, error: "not an IPv4 network (CIDR)"
        ) { $0.network = $1 },
        .value(
            "cidr6", argument: "PREFIX/64", help: ["the guest's IPv6 prefix (default fd17:625c:f037:2::/64)"],
            example: "fd00:1:2:3::/64", rejecting: ["fd00::/48", "fd00::"],
            parse: { value -> IPv6Network? in
                value.contains("/") ? IPv6Network(value).flatMap { $0.prefixLength == 64 ? $0 : nil } : nil
            },
            error: "not an IPv6 /64 prefix"
        ) { $0.prefix6 = $1 },
        .flag("no-ipv6", help: "IPv4 only: no router advertisements, IPv6 frames dropped") { $0.ipv6 = false },
        .value(
            "dns", argument: "IP[:PORT]", repeatable: true,
            help: [
                "resolver for the DNS proxy, IPv4 or IPv6 ([::1]:53) (repeatable;", "default: /etc/resolv.conf)",
            ],
            example: "127.0.0.53", rejecting: ["localhost", "10.0.0.1:99999"],
            parse: { text -> IPEndpoint? in IPEndpoint(text, defaultPort: WellKnownPort.dns.rawValue) },
            error: "not IP, IP:PORT, IPV6 or [IPV6]:PORT"
        ) { $0.dnsServers.append($1) },
        NATOption(
            name: "allow", argument: "CIDR", repeatable: true,
            help: ["a destination always allowed, restrict mode too (repeatable; IPv4 or IPv6)"],
            example: "192.0.2.0/24", rejecting: ["fd00::/129", "10.0.0.0/33", "host"]
        ) { options, value in
            if let network = IPv4Network(value) {
                options.allowedDestinations.append(network)
            } else if let network = IPv6Network(value) {
                options.allowedDestinations6.append(network)
            } else {
                return "not an IPv4 or IPv6 CIDR"
            }
            return nil
        },
        .flag("localhost-reachable", help: "the gateway address reaches host loopback") {
            $0.localhostReachable = true
        },
        .flag("restrict", help: "only forwarded and allowed destinations") { $0.restrict = true },
        .value(
            "domain", argument: "NAME", help: ["the domain name DHCP hands out (1 to 255 bytes)"],
            example: "example.test", rejecting: ["", String(repeating: "a", count: 256)],
            parse: { value -> String? in (1...255).contains(value.utf8.count) ? value : nil },
            error: "not 1 to 255 bytes"
        ) { $0.domainName = $1 },
        .value(
            "tftp-root", argument: "DIR", help: ["serve DIR read-only over TFTP at the gateway (DHCP names it)"],
            example: "/", rejecting: ["/nonexistent/tftp", ""],
            parse: { value -> String? in
                var status = stat()
                return !value.isEmpty && stat(value, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR ? value : nil
            },
            error: "not a directory"
        ) { $0.tftpRoot = $1 },
    ]

    /// `value` as a number in `range`, or why not.
    private static func number(_ value: String, name: String, in range: ClosedRange<Int>) -> Parsed<Int> {
        guard let number = Int(value) else { return .rejected("not a number in \(range)") }
        guard range.contains(number) else { return .rejected("\(name) \(number) is outside \(range)") }
        return .accepted(number)
    }
}

/// A parsed value, or why it was rejected.
private enum Parsed<Value> {
    case accepted(Value)
    case rejected(String)

    /// Runs `body` on an accepted value.
    func map(_ body: (Value) -> Void) -> Parsed<Value> {
        if case .accepted(let value) = self { body(value) }
        return self
    }

    /// Why the value was rejected, if it was.
    var reason: String? {
        if case .rejected(let reason) = self { return reason }
        return nil
    }
}

extension NATOption {
    /// An option whose value `parse` reads (rejected with `error` when it gives `nil`) and `set` stores. Give `parse`
    /// its result type: with an optional setting `Value` could be inferred as an optional itself.
    static func value<Value>(
        _ name: String, argument: String, repeatable: Bool = false, help: [String], example: String,
        rejecting others: [String], parse: @escaping @Sendable (String) -> Value?, error: String,
        set: @escaping @Sendable (inout NATOptions, Value) -> Void
    ) -> NATOption {
        NATOption(
            name: name, argument: argument, repeatable: repeatable, help: help, example: example, rejecting: others
        ) { options, value in
            guard let parsed = parse(value) else { return error }
            set(&options, parsed)
            return nil
        }
    }

    /// An option that takes no value.
    static func flag(_ name: String, help: String, set: @escaping @Sendable (inout NATOptions) -> Void) -> NATOption {
        NATOption(name: name, help: [help]) { options, _ in
            set(&options)
            return nil
        }
    }

    /// An option; `rejected` defaults to the ends of `range`, just outside, and a word.
    init(
        name: String, argument: String? = nil, range: ClosedRange<Int>? = nil, repeatable: Bool = false,
        help: [String], example: String? = nil, rejecting others: [String] = [],
        apply: @escaping @Sendable (inout NATOptions, String) -> String?
    ) {
        self.name = name
        self.argument = argument
        self.range = range
        self.repeatable = repeatable
        self.help = help
        self.example = example
        if let range {
            self.rejected = ["\(range.lowerBound - 1)", "\(range.upperBound + 1)", "many"] + others
        } else {
            self.rejected = others
        }
        self.apply = apply
    }
}
