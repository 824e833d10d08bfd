import NICCore
import NetBackend
import Testing

@Suite struct PromiscuousPolicyTests {
    /// Guests A (mac 1), B (mac 2) and a promiscuous guest P (mac 3), plus a host port H (mac 4), every address
    /// learned.
    private struct Topology {
        let network: InternalNetwork
        let a = FramePort(), b = FramePort(), spy = FramePort(), host = FramePort()

        init(policy: PromiscuousPolicy) {
            network = InternalNetwork(name: "promisc", promiscuousPolicy: policy)
            a.attach(network)
            b.attach(network)
            spy.attach(network)
            network.attach(host, role: .host)
            for (i, port) in [a, b, spy, host].enumerated() {
                port.send(frame(to: .broadcast, from: mac(UInt8(i + 1))))
            }
            for port in [a, b, spy, host] { _ = port.drain() }
            spy.setPromiscuous(true)
        }

        /// Which of the four ports receive a unicast frame `from` one `to` another.
        func receivers(from sender: FramePort, to destination: MACAddress) -> [String] {
            let source = [(a, mac(1)), (b, mac(2)), (spy, mac(3)), (host, mac(4))].first { $0.0 === sender }!.1
            sender.send(frame(to: destination, from: source))
            return [("A", a), ("B", b), ("P", spy), ("H", host)].compactMap { $0.1.drain().isEmpty ? nil : $0.0 }
        }
    }

    @Test func hostPortRole() {
        let topology = Topology(policy: .deny)
        #expect(topology.network.role(of: topology.host) == .host)
        #expect(topology.network.role(of: topology.a) == .guest)
        #expect(topology.host.carrier)
        #expect(topology.network.portCount == 4)
    }

    @Test func denyShowsOnlyWhatANormalCardSees() {
        let topology = Topology(policy: .deny)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B"])
        #expect(topology.receivers(from: topology.host, to: mac(1)) == ["A"])
        #expect(topology.receivers(from: topology.a, to: mac(4)) == ["H"])
        #expect(topology.receivers(from: topology.a, to: mac(3)) == ["P"], "its own traffic still arrives")
        #expect(topology.receivers(from: topology.a, to: mac(77)) == ["B", "P", "H"], "unknown unicast floods")
        #expect(topology.network.statistics.promiscuousCopies == 0)
    }

    @Test func allowVMsShowsGuestToGuestTrafficOnly() {
        let topology = Topology(policy: .allowVMs)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B", "P"])
        #expect(topology.receivers(from: topology.b, to: mac(1)) == ["A", "P"])
        #expect(topology.receivers(from: topology.host, to: mac(1)) == ["A"], "host traffic stays hidden")
        #expect(topology.receivers(from: topology.a, to: mac(4)) == ["H"], "traffic to the host too")
        #expect(topology.network.statistics.promiscuousCopies == 2)
    }

    @Test func allowAllShowsEverything() {
        let topology = Topology(policy: .allowAll)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B", "P"])
        #expect(topology.receivers(from: topology.host, to: mac(1)) == ["A", "P"])
        #expect(topology.receivers(from: topology.a, to: mac(4)) == ["P", "H"])
        #expect(topology.network.statistics.promiscuousCopies == 3)
        #expect(topology.network.counters.contains(Counter("promiscuous_copies", 3)))
    }

    @Test(arguments: PromiscuousPolicy.allCases)
    func leavingPromiscuousModeStopsTheCopies(policy: PromiscuousPolicy) {
        let topology = Topology(policy: policy)
        topology.spy.setPromiscuous(false)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B"])
        #expect(topology.receivers(from: topology.host, to: mac(1)) == ["A"])
    }

    @Test(arguments: PromiscuousPolicy.allCases)
    func promiscuousHostPortSeesEveryFrame(policy: PromiscuousPolicy) {
        let topology = Topology(policy: policy)
        topology.spy.setPromiscuous(false)
        topology.host.setPromiscuous(true)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B", "H"])
    }

    @Test func policyChangesAtRunTime() {
        let topology = Topology(policy: .deny)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B"])
        topology.network.promiscuousPolicy = .allowVMs
        #expect(topology.network.promiscuousPolicy == .allowVMs)
        #expect(topology.receivers(from: topology.a, to: mac(2)) == ["B", "P"])
    }

    @Test func policyNamesMatchVirtualBox() {
        #expect(PromiscuousPolicy.allCases.map(\.rawValue) == ["deny", "allow-vms", "allow-all"])
        #expect(PromiscuousPolicy(rawValue: "allow-vms") == .allowVMs)
        #expect(PromiscuousPolicy(rawValue: "allow") == nil)
    }

    @Test func promiscuousModeReportedBeforeAttachIsHonoured() {
        let network = InternalNetwork(name: "early", promiscuousPolicy: .allowVMs)
        let a = FramePort(), b = FramePort(), spy = FramePort()
        spy.setPromiscuous(true)
        for port in [a, b, spy] { port.attach(network) }
        a.send(frame(to: .broadcast, from: mac(1)))
        b.send(frame(to: .broadcast, from: mac(2)))
        for port in [a, b, spy] { _ = port.drain() }
        a.send(frame(to: mac(2), from: mac(1)))
        #expect(spy.drain().count == 1)
    }
}
