import Glibc
import NICCore

/// The NAT's options as people write them, one parser and validator for every front end: the attachment setting
/// string (`nat:mtu=9000;restrict`, see ``AttachmentSetting``) and the `vnic nat` flags (`--mtu 9000 --restrict`)
/// both hand each option to ``apply(option:value:)``, so they accept the same options with the same ranges and
/// report the same errors. ``table`` lists the options with their values, ranges and help.
///
/// ```swift
/// var options = NATOptions()
/// try options.apply(option: "slot", value: "1")
/// try options.apply(option: "restrict", value: nil)
/// let configuration = try options.configuration()   // 10.0.3.0/24, restrict mode
/// ```
///
/// The order of options does not matter, except that the last of `slot` and `cidr` picks the IPv4 network; the IPv6
/// prefix is `cidr6`'s, else the slot's.
public struct NATOptions: Sendable {
    /// The card slot (`slot`): VirtualBox's network and IPv6 prefix for it.
    public var slot = 0
    /// The IPv4 network (`cidr`), overriding the slot's; `slot` clears it.
    public var network: IPv4Network?
    /// The IPv6 prefix (`cidr6`), overriding the slot's.
    public var prefix6: IPv6Network?
    /// Whether the NAT speaks IPv6 (`no-ipv6` clears it).
    public var ipv6 = true
    /// The MTU (`mtu`), if given.
    public var mtu: Int?
    /// Resolvers for the DNS proxy (`dns`); the host's when empty.
    public var dnsServers: [IPEndpoint] = []
    /// Port forwarding rules (`forward`).
    public var portForwards: [PortForwardRule] = []
    /// Destinations always allowed (`allow`), IPv4 ...
    public var allowedDestinations: [IPv4Network] = []
    /// ... and IPv6.
    public var allowedDestinations6: [IPv6Network] = []
    /// Whether the gateway reaches host loopback (`localhost-reachable`).
    public var localhostReachable = false
    /// Whether only forwarded and allowed destinations are reachable (`restrict`).
    public var restrict = false
    /// The domain name DHCP hands out (`domain`).
    public var domainName: String?
    /// The folder served over TFTP (`tftp-root`).
    public var tftpRoot: String?

    /// No options: VirtualBox's defaults for slot 0.
    public init() {}

    /// The option named `name` (`mtu`, `no-ipv6`; no dashes), if there is one.
    public static func option(named name: String) -> NATOption? { table.first { $0.name == name } }

    /// Applies the option `name` with `value` (`nil` for an option that takes none). Throws, naming the option and
    /// the value, when the option is unknown, a value is missing or unexpected, or the value is malformed or out of
    /// the option's range.
    public mutating func apply(option name: String, value: String?) throws(NATOptionError) {
        guard let option = Self.option(named: name) else {
            throw NATOptionError(option: name, value: value, reason: "unknown NAT option")
        }
        switch (option.argument, value) {
        case (nil, nil): break
        case (nil, let value?): throw NATOptionError(option: name, value: value, reason: "takes no value")
        case (.some, nil): throw NATOptionError(option: name, value: nil, reason: "needs a value")
        case (.some, .some): break
        }
        if let reason = option.apply(&self, value ?? "") {
            throw NATOptionError(option: name, value: value, reason: reason)
        }
    }

    /// The configuration the options describe, validated; the error is the configuration's (a network too small, an
    /// IPv6 rule with IPv6 off).
    public func configuration() throws(NATOptionError) -> NATConfiguration {
        var configuration = NATConfiguration(network: network ?? NATConfiguration(slot: slot).network)
        configuration.prefix6 = prefix6 ?? NATConfiguration.defaultPrefix6(slot: slot)
        configuration.ipv6 = ipv6
        if let mtu { configuration.mtu = mtu }
        if !dnsServers.isEmpty { configuration.dnsServers = dnsServers }
        configuration.portForwards = portForwards
        configuration.allowedDestinations = allowedDestinations
        configuration.allowedDestinations6 = allowedDestinations6
        configuration.localhostReachable = localhostReachable
        configuration.restrict = restrict
        configuration.domainName = domainName
        configuration.tftpRoot = tftpRoot
        do throws(NATError) { try configuration.validate() } catch {
            throw NATOptionError(option: nil, value: nil, reason: error.description)
        }
        return configuration
    }
}

/// One NAT option: its name, its value's placeholder, range and help, and how it changes ``NATOptions``.
public struct NATOption: Sendable {
    /// The name: `mtu` in a setting string (`mtu=9000`), `--mtu` on the command line.
    public let name: String
    /// The placeholder of its value (`N`, `CIDR`), or `nil` when it takes none.
    public let argument: String?
    /// The range of a numeric value.
    public let range: ClosedRange<Int>?
    /// Whether giving it again adds a value (rather than replacing it).
    public let repeatable: Bool
    /// What it does, for help; lines after the first continue it.
    public let help: [String]
    /// A value it accepts (`nil` when it takes none), for documentation and tests.
    public let example: String?
    /// Values it rejects, for tests: the ends of its range, malformed values.
    public let rejected: [String]
    /// Applies the value; a reason when it is rejected.
    let apply: @Sendable (inout NATOptions, String) -> String?

    /// The option as `vnic nat --help` lists it: `--mtu N`, padded, then the help.
    public var helpLines: [String] {
        let spelled = "  --" + name + (argument.map { " " + $0 } ?? "")
        let pad = String(repeating: " ", count: 26)
        let first = spelled.count < 26 ? spelled + String(repeating: " ", count: 26 - spelled.count) : spelled + " "
        return help.enumerated().map { index, line in (index == 0 ? first : pad) + line }
    }
}

/// A NAT option that was not accepted, or options that do not make a valid configuration.
public struct NATOptionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The option's name (no dashes), or `nil` for the configuration as a whole.
    public var option: String?
    /// The value given, if any.
    public var value: String?
    /// What is wrong.
    public var reason: String

    /// An error about `option` given `value`, or about the configuration as a whole when `option` is `nil`.
    public init(option: String?, value: String?, reason: String) {
        self.option = option
        self.value = value
        self.reason = reason
    }

    /// The error with the option spelled by `prefix` (`--` for command-line flags).
    public func description(optionPrefix prefix: String) -> String {
        guard let option else { return reason }
        guard let value else { return "\(prefix)\(option) \(reason)" }
        return "\(prefix)\(option) '\(value)': \(reason)"
    }

    public var description: String { description(optionPrefix: "") }
}

extension NATOptions {
    /// The command-line front end: when `arguments[index]` is `--NAME` for an option of ``table``, applies it, with
    /// the next argument as its value when it takes one, leaves `index` at the last argument used and answers
    /// `true`; answers `false`, `index` unchanged, for any other argument. Errors name the option without dashes
    /// (``NATOptionError/description(optionPrefix:)`` with `--` spells them as given).
    public mutating func apply(flagAt index: inout Int, in arguments: [String]) throws(NATOptionError) -> Bool {
        guard arguments.indices.contains(index), arguments[index].hasPrefix("--") else { return false }
        let name = String(arguments[index].dropFirst(2))
        guard let option = Self.option(named: name) else { return false }
        var value: String?
        if option.argument != nil, index + 1 < arguments.count {
            index += 1
            value = arguments[index]
        }
        try apply(option: name, value: value)
        return true
    }

    /// The options as `vnic nat --help` lists them, one `--NAME VALUE  help` entry each.
    public static var flagHelp: String { table.flatMap(\.helpLines).joined(separator: "\n") }
}
