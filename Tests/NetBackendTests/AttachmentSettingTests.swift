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
        ("", "expected"), ("bridged:eth0", "unknown attachment 'bridged'"), ("intnet:", "printable ASCII"),
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
