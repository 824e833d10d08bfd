import NICCore
import NetBackend
import Testing

@Suite("Attachment settings")
struct AttachmentSettingTests {
    @Test func nullAndInternalNetworks() throws {
        guard case .null = try AttachmentSetting(parsing: "null") else {
            Issue.record("'null' is not .null")
            return
        }
        guard case .internalNetwork(let name) = try AttachmentSetting(parsing: "intnet:lab-1") else {
            Issue.record("'intnet:lab-1' is not an internal network")
            return
        }
        #expect(name == "lab-1")
        let hub = InternalNetworkHub()
        let first = try AttachmentSetting(parsing: "intnet:lab-1").makeAttachment(hub: hub)
        let second = try AttachmentSetting(parsing: "intnet:lab-1").makeAttachment(hub: hub)
        #expect(first === second, "the same name is the same network")
    }

    @Test func natOptions() throws {
        guard case .nat(let plain) = try AttachmentSetting(parsing: "nat") else {
            Issue.record("'nat' is not a NAT")
            return
        }
        #expect(plain.network.description == "10.0.2.0/24")
        #expect(!plain.localhostReachable && !plain.restrict)
        let text = "nat:localhost-reachable;restrict;slot=1;mtu=9000;dns=127.0.0.53;forward=web,tcp,127.0.0.1,18080,,80"
        guard case .nat(let configured) = try AttachmentSetting(parsing: text) else {
            Issue.record("options did not parse")
            return
        }
        #expect(configured.network.description == "10.0.3.0/24", "slot 1 is 10.0.3.0/24")
        #expect(configured.localhostReachable && configured.restrict, "options before slot= are kept")
        #expect(configured.mtu == 9000)
        #expect(configured.dnsServers.map(\.description) == ["127.0.0.53:53"])
        #expect(configured.portForwards.map(\.name) == ["web"])
        guard case .nat(let short) = try AttachmentSetting(parsing: "nat:cidr=192.168/16") else {
            Issue.record("VirtualBox's short CIDR did not parse")
            return
        }
        #expect(short.gateway.description == "192.168.0.2")
        #expect(configured.ipv6 && configured.prefix6.description == "fd17:625c:f037:3::/64", "slot 1's IPv6 prefix")
        let v6 = "nat:cidr6=fd00:1:2:3::/64;slot=4;forward=web6,tcp,[::1],18081,,80"
        guard case .nat(let six) = try AttachmentSetting(parsing: v6) else {
            Issue.record("IPv6 options did not parse")
            return
        }
        #expect(six.prefix6.description == "fd00:1:2:3::/64" && six.gateway6.description == "fd00:1:2:3::2")
        #expect(six.portForwards.first?.hostAddress == .v6(.loopback))
        guard case .nat(let off) = try AttachmentSetting(parsing: "nat:no-ipv6") else {
            Issue.record("no-ipv6 did not parse")
            return
        }
        #expect(!off.ipv6)
    }

    @Test(arguments: [
        ("", "expected"), ("pigeon:coop", "unknown attachment 'pigeon'"), ("intnet:", "printable ASCII"),
        ("intnet:a b", "printable ASCII"), ("nat:slot=999", "slot '999'"), ("nat:cidr=10.0.0.0/30", "too small"),
        ("nat:mtu=100", "mtu 100"), ("nat:dns=localhost", "dns 'localhost'"), ("nat:forward=x", "forward 'x'"),
        ("nat:colour=blue", "unknown NAT option 'colour=blue'"), ("nat:cidr6=fd00::/48", "cidr6 'fd00::/48'"),
        ("nat:cidr6=fe80::/64", "must be a /64 outside"), ("nat:no-ipv6;forward=w,tcp,::1,18082,,80", "IPv6 is off"),
    ])
    func malformedSettingsNameTheProblem(text: String, expected: String) {
        do {
            _ = try AttachmentSetting(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }
}

@Suite("NAT options: one table, two front ends")
struct NATOptionTableTests {
    /// The setting-string spelling of `option` with `value`.
    static func setting(_ option: NATOption, _ value: String?) -> String {
        "nat:" + option.name + (value.map { "=" + $0 } ?? "")
    }

    /// The flags spelling, parsed the way `vnic nat` parses it.
    static func flags(_ option: NATOption, _ value: String?) throws(NATOptionError) -> NATConfiguration {
        let arguments = ["--" + option.name] + (value.map { [$0] } ?? [])
        var options = NATOptions()
        var index = 0
        #expect(try options.apply(flagAt: &index, in: arguments))
        #expect(index == arguments.count - 1, "the flag and its value are used, nothing more")
        return try options.configuration()
    }

    @Test(arguments: NATOptions.table.map(\.name))
    func bothFrontEndsAcceptEveryOption(name: String) throws {
        let option = try #require(NATOptions.option(named: name))
        #expect((option.argument == nil) == (option.example == nil), "an option with a value has an example")
        guard case .nat(let fromSetting) = try AttachmentSetting(parsing: Self.setting(option, option.example)) else {
            Issue.record("\(name) is not a NAT setting")
            return
        }
        let fromFlags = try Self.flags(option, option.example)
        #expect(fromSetting.network == fromFlags.network && fromSetting.mtu == fromFlags.mtu)
        #expect(fromSetting.prefix6 == fromFlags.prefix6 && fromSetting.ipv6 == fromFlags.ipv6)
        #expect(fromSetting.restrict == fromFlags.restrict)
        #expect(fromSetting.localhostReachable == fromFlags.localhostReachable)
        #expect(fromSetting.domainName == fromFlags.domainName && fromSetting.tftpRoot == fromFlags.tftpRoot)
        #expect(fromSetting.allowedDestinations == fromFlags.allowedDestinations)
        #expect(fromSetting.allowedDestinations6 == fromFlags.allowedDestinations6)
        #expect(fromSetting.portForwards.map(\.name) == fromFlags.portForwards.map(\.name))
        #expect(fromSetting.dnsServers == fromFlags.dnsServers)
        #expect(NATOptions.flagHelp.contains("--" + name), "help lists --\(name)")
        if let range = option.range, let example = option.example.flatMap({ Int($0) }) {
            #expect(range.contains(example))
            for bound in [range.lowerBound, range.upperBound] {
                _ = try AttachmentSetting(parsing: Self.setting(option, "\(bound)"))
                _ = try Self.flags(option, "\(bound)")
            }
        }
    }

    @Test(arguments: NATOptions.table.map(\.name))
    func bothFrontEndsRejectTheSameValuesNamingOptionAndValue(name: String) throws {
        let option = try #require(NATOptions.option(named: name))
        for value in option.rejected {
            var setting = ""
            do {
                _ = try AttachmentSetting(parsing: Self.setting(option, value))
                Issue.record("nat:\(name)=\(value) was accepted")
            } catch {
                setting = error.reason
            }
            do {
                _ = try Self.flags(option, value)
                Issue.record("--\(name) \(value) was accepted")
            } catch {
                #expect(error.option == name && error.value == value)
                #expect(error.description == setting, "the same message")
                #expect(error.description(optionPrefix: "--").hasPrefix("--\(name) '\(value)': "))
            }
        }
        // A value for an option that takes none (on the command line the next argument is not its value), no value
        // for one that needs it.
        if option.argument == nil {
            var options = NATOptions()
            let error = NATOptionError(option: name, value: "1", reason: "takes no value")
            #expect(throws: error) { try options.apply(option: name, value: "1") }
            do {
                _ = try AttachmentSetting(parsing: Self.setting(option, "1"))
                Issue.record("nat:\(name)=1 was accepted")
            } catch {
                #expect(error.reason == "\(name) '1': takes no value")
            }
        } else {
            #expect(throws: NATOptionError(option: name, value: nil, reason: "needs a value")) {
                try Self.flags(option, nil)
            }
            #expect(throws: AttachmentSettingError.self) { try AttachmentSetting(parsing: Self.setting(option, nil)) }
        }
    }

    @Test func orderAndRepetition() throws {
        var options = NATOptions()
        for (name, value) in [
            ("cidr", "192.168.7.0/24"), ("slot", "3"), ("dns", "192.0.2.1"), ("dns", "[::1]:5353"),
            ("allow", "fd00::/8"), ("allow", "198.51.100.0/24"),
        ] {
            try options.apply(option: name, value: value)
        }
        let configuration = try options.configuration()
        #expect(configuration.network.description == "10.0.5.0/24", "the last of slot and cidr wins")
        #expect(configuration.prefix6.description == "fd17:625c:f037:5::/64")
        #expect(configuration.dnsServers.count == 2)
        #expect(configuration.allowedDestinations.count == 1 && configuration.allowedDestinations6.count == 1)
        var index = 0
        #expect(try !options.apply(flagAt: &index, in: ["--tap", "t0"]), "host-only flags are not NAT options")
        #expect(index == 0)
    }
}
