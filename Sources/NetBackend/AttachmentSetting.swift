import NICCore

/// An attachment named by a settings string, as a host's configuration spells it (the C interface's
/// `vnic_card_attach`, the QEMU device's `attach=` property).
///
/// Grammar:
/// - `null`: not attached.
/// - `intnet:NAME`: the internal network called NAME in a hub; 1 to 64 printable ASCII characters without spaces.
/// - `nat` or `nat:OPTION;OPTION...`: a NAT of its own (VirtualBox's NAT mode). The options are ``NATOptions``'s,
///   the same as `vnic nat`'s flags: `slot=N` (network 10.0.(N+2).0/24 and fd17:625c:f037:(N+2)::/64), `cidr=CIDR`
///   (`192.168/16` style too), `cidr6=PREFIX/64`, `no-ipv6`, `localhost-reachable`, `restrict`, `mtu=N`,
///   `dns=IP[:PORT]` (repeatable), `allow=CIDR` (repeatable), `domain=NAME`, `tftp-root=DIR`, `forward=RULE`
///   (repeatable, VirtualBox syntax `name,tcp,,2222,,22`; `name,tcp,[::1],8080,,80` for IPv6).
/// - `udptunnel` or `udptunnel:PROPERTY,PROPERTY...`: VirtualBox's UDP tunnel, properties `sport=N`, `dport=N`,
///   `dest=IP`, `local=IP`, `accept=any|dest` (see ``UDPTunnelConfiguration``); `;` separates them too.
/// - `vde` or `vde:DIR[,port=N]`: a port on the VDE switch whose control folder is DIR (see ``VDEConfiguration``).
/// - `vxlan:vni=N,remote=IP[,port=4789][,local=IP][,mtu=1500]`: a VXLAN segment (see ``VXLANConfiguration``).
/// - `bridged:IFNAME`: the host interface IFNAME, through an AF_PACKET socket (see ``BridgedAttachment``).
public enum AttachmentSetting: Sendable, CustomStringConvertible {
    /// Not attached: carrier down, transmitted frames dropped and counted.
    case null
    /// The internal network of that name.
    case internalNetwork(name: String)
    /// A NAT with this configuration.
    case nat(NATConfiguration)
    /// A UDP tunnel with this configuration.
    case udpTunnel(UDPTunnelConfiguration)
    /// A port on this VDE switch.
    case vde(VDEConfiguration)
    /// A VXLAN segment.
    case vxlan(VXLANConfiguration)
    /// A host interface.
    case bridged(BridgedConfiguration)

    /// The longest internal network name accepted.
    public static let maximumNameLength = 64

    /// Parses a settings string.
    public init(parsing text: String) throws(AttachmentSettingError) {
        if text == "null" {
            self = .null
            return
        }
        if text == "nat" {
            self = .nat(NATConfiguration(slot: 0))
            return
        }
        if text == "udptunnel" {
            self = .udpTunnel(UDPTunnelConfiguration())
            return
        }
        if text == "vde" {
            self = .vde(VDEConfiguration())
            return
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw AttachmentSettingError(setting: text, reason: "expected \(Self.kinds)")
        }
        let kind = text[..<colon]
        let argument = String(text[text.index(after: colon)...])
        switch kind {
        case "intnet":
            guard !argument.isEmpty, argument.utf8.count <= Self.maximumNameLength,
                argument.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw AttachmentSettingError(
                    setting: text,
                    reason: "an internal network name is 1 to \(Self.maximumNameLength) printable ASCII characters")
            }
            self = .internalNetwork(name: argument)
        case "nat":
            self = .nat(try Self.natConfiguration(argument, setting: text))
        case "udptunnel":
            self = .udpTunnel(
                try Self.naming(text) { () throws(HostLinkError) in try UDPTunnelConfiguration(parsing: argument) })
        case "vde":
            self = .vde(try Self.naming(text) { () throws(HostLinkError) in try VDEConfiguration(parsing: argument) })
        case "bridged":
            self = .bridged(
                try Self.naming(text) { () throws(HostLinkError) in try BridgedConfiguration(parsing: argument) })
        case "vxlan":
            self = .vxlan(
                try Self.naming(text) { () throws(HostLinkError) in try VXLANConfiguration(parsing: argument) })
        default:
            throw AttachmentSettingError(setting: text, reason: "unknown attachment '\(kind)' (known: \(Self.kinds))")
        }
    }

    /// Runs `body`, turning its error into this setting's: the setting as given, and what went wrong.
    private static func naming<Value, Failure: Error & CustomStringConvertible>(
        _ setting: String, _ body: () throws(Failure) -> Value
    ) throws(AttachmentSettingError) -> Value {
        do { return try body() } catch { throw AttachmentSettingError(setting: setting, reason: error.description) }
    }

    /// The forms a setting takes, for errors.
    static let kinds =
        "'null', 'intnet:NAME', 'nat[:OPTIONS]', 'bridged:IFNAME', 'udptunnel[:PROPERTIES]', 'vde[:DIR[,port=N]]' "
        + "or 'vxlan:vni=N,remote=IP[,...]'"

    /// Parses NAT options separated by `;`, each `NAME` or `NAME=VALUE` (see ``NATOptions``).
    private static func natConfiguration(_ text: String, setting: String) throws(AttachmentSettingError)
        -> NATConfiguration
    {
        func fail(_ reason: String) -> AttachmentSettingError {
            AttachmentSettingError(setting: setting, reason: reason)
        }
        var options = NATOptions()
        for option in text.split(separator: ";", omittingEmptySubsequences: true) {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard NATOptions.option(named: name) != nil else {
                let known = NATOptions.table.map { $0.name + ($0.argument.map { "=" + $0 } ?? "") }
                throw fail("unknown NAT option '\(option)' (known: \(known.joined(separator: ", ")))")
            }
            do throws(NATOptionError) {
                try options.apply(option: name, value: parts.count == 2 ? String(parts[1]) : nil)
            } catch {
                throw fail(error.description)
            }
        }
        do throws(NATOptionError) { return try options.configuration() } catch { throw fail(error.description) }
    }

    /// The attachment this setting names; internal networks come from `hub`. A NAT starts its event loop and opens
    /// its port forwards here, so it can fail (a port in use, say).
    public func makeAttachment(hub: InternalNetworkHub = .shared) throws(AttachmentSettingError)
        -> any NetworkAttachment
    {
        switch self {
        case .null: return NullAttachment()
        case .internalNetwork(let name): return hub.network(named: name)
        case .nat(let configuration):
            return try Self.naming(description) { () throws(NATError) in try NATAttachment(configuration: configuration)
            }
        case .udpTunnel(let configuration):
            return try Self.naming(description) { () throws(HostLinkError) in
                try UDPTunnelAttachment(configuration: configuration)
            }
        case .vde(let configuration):
            return try Self.naming(description) { () throws(HostLinkError) in
                try VDEAttachment(configuration: configuration)
            }
        case .bridged(let configuration):
            return try Self.naming(description) { () throws(HostLinkError) in
                try BridgedAttachment(configuration: configuration)
            }
        case .vxlan(let configuration):
            return try Self.naming(description) { () throws(HostLinkError) in
                try VXLANAttachment(configuration: configuration)
            }
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .internalNetwork(let name): return "intnet:" + name
        case .nat(let configuration): return "nat:cidr=\(configuration.network)"
        case .udpTunnel(let configuration): return "udptunnel:\(configuration)"
        case .vde(let configuration): return "vde:\(configuration)"
        case .vxlan(let configuration): return "vxlan:\(configuration)"
        case .bridged(let configuration): return "bridged:\(configuration)"
        }
    }
}

/// A settings string that does not name an attachment, or an attachment that could not start.
public struct AttachmentSettingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The string as given.
    public var setting: String
    /// What is wrong with it.
    public var reason: String

    public var description: String { "attachment setting '\(setting)': \(reason)" }
}
