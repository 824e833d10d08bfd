import NICCore
import NetBackend
import Testing

@Suite struct InternalNetworkTests {
    /// A fresh network with `count` guest ports whose cards use `mac(1)`, `mac(2)`, ...
    private func makeNetwork(
        ports count: Int, queueCapacity: Int = 64, macTableCapacity: Int = InternalNetwork.defaultMACTableCapacity
    ) -> (InternalNetwork, [FramePort]) {
        let network = InternalNetwork(name: "test", macTableCapacity: macTableCapacity)
        let ports = (0..<count).map { _ in FramePort(queueCapacity: queueCapacity) }
        for port in ports { port.attach(network) }
        return (network, ports)
    }

    /// Makes the network learn every port's address, then empties the queues.
    private func announce(_ ports: [FramePort]) {
        for (i, port) in ports.enumerated() { port.send(frame(to: .broadcast, from: mac(UInt8(i + 1)))) }
        for port in ports { _ = port.drain() }
    }

    @Test func attachRaisesCarrierAndRegisters() {
        let (network, ports) = makeNetwork(ports: 2)
        #expect(ports.allSatisfy { $0.carrier })
        #expect(network.portCount == 2)
        #expect(network.role(of: ports[0]) == .guest)
        #expect(network.role(of: FramePort()) == nil)
        #expect(network.name == "test")
        #expect(network.promiscuousPolicy == .deny)
    }

    @Test func broadcastFloodsToEveryOtherPortButNeverEchoes() {
        let (network, ports) = makeNetwork(ports: 3)
        let broadcast = frame(to: .broadcast, from: mac(1), tag: 7)
        ports[0].send(broadcast)
        #expect(ports[0].drain().isEmpty, "no echo to the sender")
        #expect(ports[1].drain() == [broadcast])
        #expect(ports[2].drain() == [broadcast])
        let multicast = frame(to: MACAddress(rawValue: 0x0100_5E00_00FB), from: mac(2), tag: 8)
        ports[1].send(multicast)
        #expect(ports[0].drain() == [multicast])
        #expect(ports[1].drain().isEmpty)
        #expect(ports[2].drain() == [multicast])
        let stats = network.statistics
        #expect(stats.framesIn == 2)
        #expect(stats.framesFlooded == 2)
        #expect(stats.framesSwitched == 0)
        #expect(stats.framesDelivered == 4)
    }

    @Test func learnedUnicastGoesToOnePortOnly() {
        let (network, ports) = makeNetwork(ports: 3)
        announce(ports)
        let unicast = frame(to: mac(1), from: mac(2), tag: 42)
        ports[1].send(unicast)
        #expect(ports[0].drain() == [unicast])
        #expect(ports[1].drain().isEmpty)
        #expect(ports[2].drain().isEmpty)
        let reply = frame(to: mac(2), from: mac(1), tag: 43)
        ports[0].send(reply)
        #expect(ports[1].drain() == [reply])
        #expect(ports[2].drain().isEmpty)
        #expect(network.statistics.framesSwitched == 2)
        #expect(network.learnedAddressCount == 3)
    }

    @Test func twoPortsTalkBothWays() {
        let (_, ports) = makeNetwork(ports: 2)
        ports[0].send(frame(to: .broadcast, from: mac(1)))
        #expect(ports[1].drain().count == 1)
        ports[1].send(frame(to: mac(1), from: mac(2), tag: 1))
        ports[0].send(frame(to: mac(2), from: mac(1), tag: 2))
        #expect(ports[0].drain().map(tag(of:)) == [1])
        #expect(ports[1].drain().map(tag(of:)) == [2])
    }

    @Test func unknownUnicastFloods() {
        let (network, ports) = makeNetwork(ports: 3)
        announce(ports)
        let unknown = frame(to: mac(99), from: mac(1), tag: 5)
        ports[0].send(unknown)
        #expect(ports[0].drain().isEmpty)
        #expect(ports[1].drain() == [unknown])
        #expect(ports[2].drain() == [unknown])
        #expect(network.statistics.framesFlooded == 4, "three announcements and the unknown unicast")
    }

    @Test func unicastToTheSendersOwnAddressGoesNowhere() {
        let (network, ports) = makeNetwork(ports: 2)
        announce(ports)
        ports[0].send(frame(to: mac(1), from: mac(1)))
        #expect(ports[0].drain().isEmpty)
        #expect(ports[1].drain().isEmpty)
        #expect(network.statistics.droppedSamePort == 1)
    }

    @Test func groupSourceAddressesAreNotLearned() {
        let (network, ports) = makeNetwork(ports: 3)
        let group = MACAddress(rawValue: 0x0300_0000_0001)
        ports[0].send(frame(to: .broadcast, from: group))
        #expect(network.learnedAddressCount == 0)
        ports[1].send(frame(to: group, from: mac(2)))
        #expect(ports[0].drain().count == 1, "the multicast flood")
        #expect(ports[2].drain().count == 2, "the broadcast, then the multicast flood")
    }

    @Test func stationMovesToAnotherPort() {
        let (_, ports) = makeNetwork(ports: 3)
        announce(ports)
        ports[2].send(frame(to: .broadcast, from: mac(1)))
        _ = ports[0].drain()
        _ = ports[1].drain()
        ports[1].send(frame(to: mac(1), from: mac(2), tag: 9))
        #expect(ports[0].drain().isEmpty, "mac(1) now lives behind port 2")
        #expect(ports[2].drain().map(tag(of:)) == [9])
    }

    @Test func separateNamesAreIsolated() {
        let hub = InternalNetworkHub()
        let red = hub.network(named: "red")
        #expect(hub.network(named: "red") === red)
        let blue = hub.network(named: "blue")
        #expect(blue !== red)
        #expect(hub.networkNames == ["blue", "red"])
        let redPorts = (0..<2).map { _ in FramePort() }
        let bluePort = FramePort()
        for port in redPorts { port.attach(red) }
        bluePort.attach(blue)
        redPorts[0].send(frame(to: .broadcast, from: mac(1)))
        bluePort.send(frame(to: .broadcast, from: mac(3)))
        #expect(redPorts[1].drain().map { MACAddress(bytes: $0[6..<12]) } == [mac(1)])
        #expect(bluePort.drain().isEmpty, "alone on its network")
        #expect(redPorts[0].drain().isEmpty)
        #expect(InternalNetworkHub().network(named: "red") !== red, "a different hub is a different namespace")
    }

    @Test func sharedHubHandsOutTheSameNetwork() {
        let name = "shared-\(UInt64.random(in: 0...UInt64.max))"
        let network = InternalNetworkHub.shared.network(named: name)
        #expect(InternalNetworkHub.shared.network(named: name) === network)
        #expect(InternalNetworkHub.shared.networkNames.contains(name))
        #expect(network.name == name)
    }

    @Test func tooShortFramesAreDroppedAndCounted() {
        let (network, ports) = makeNetwork(ports: 2)
        ports[0].send([])
        ports[0].send(Array(frame(to: .broadcast, from: mac(1))[..<13]))
        #expect(ports[1].drain().isEmpty)
        #expect(network.statistics.droppedTooShort == 2)
        #expect(network.statistics.framesIn == 2)
        #expect(network.learnedAddressCount == 0, "nothing learned from a runt")
        ports[0].send(Array(frame(to: .broadcast, from: mac(1))[..<14]))
        #expect(ports[1].drain().count == 1, "a bare header is forwarded")
        #expect(network.counters.contains(Counter("drop_too_short", 2)))
    }

    @Test func tooLongFramesAreDroppedAndCounted() {
        let network = InternalNetwork(name: "small", maximumFrameLength: 1518)
        let ports = (0..<2).map { _ in FramePort() }
        for port in ports { port.attach(network) }
        ports[0].send(frame(to: .broadcast, from: mac(1), length: 1518))
        ports[0].send(frame(to: .broadcast, from: mac(1), length: 1519))
        #expect(ports[1].drain().map(\.count) == [1518])
        #expect(network.statistics.droppedTooLong == 1)
    }

    @Test func fullDestinationQueueIsCounted() {
        let (network, ports) = makeNetwork(ports: 3, queueCapacity: 2)
        for i in 0..<5 { ports[0].send(frame(to: .broadcast, from: mac(1), tag: UInt32(i))) }
        #expect(ports[1].drain().map(tag(of:)) == [0, 1], "the oldest frames were kept")
        #expect(ports[2].drain().count == 2, "the broadcast, then the multicast flood")
        let stats = network.statistics
        #expect(stats.framesDelivered == 4)
        #expect(stats.droppedQueueFull == 6)
        #expect(ports[1].inboundDropped == 3)
        #expect(network.counters.contains(Counter("drop_queue_full", 6)))
    }

    @Test func detachForgetsThePortAndItsAddresses() {
        let (network, ports) = makeNetwork(ports: 3)
        announce(ports)
        #expect(network.learnedAddressCount == 3)
        ports[2].detach()
        #expect(!ports[2].carrier)
        #expect(network.portCount == 2)
        #expect(network.learnedAddressCount == 2)
        #expect(network.role(of: ports[2]) == nil)
        let flooded = network.statistics.framesFlooded
        ports[0].send(frame(to: mac(3), from: mac(1)))
        #expect(network.statistics.framesFlooded == flooded + 1, "mac(3) is unknown again")
        #expect(ports[1].drain().count == 1)
        #expect(ports[2].drain().isEmpty, "a detached port gets nothing")
        ports[2].send(frame(to: .broadcast, from: mac(3)))
        #expect(ports[0].drain().isEmpty && ports[1].drain().isEmpty, "nor sends anything into the network")
        ports[2].attach(network)
        #expect(ports[2].carrier)
        ports[0].send(frame(to: .broadcast, from: mac(1)))
        #expect(ports[2].drain().count == 1, "re-attached")
    }

    @Test func transmitFromAStrangerIsCounted() {
        let (network, ports) = makeNetwork(ports: 1)
        let stranger = FramePort()
        frame(to: .broadcast, from: mac(9)).withUnsafeBytes {
            network.transmit($0, metadata: .none, from: stranger)
        }
        #expect(ports[0].drain().isEmpty)
        #expect(network.statistics.droppedUnknownPort == 1)
        #expect(network.learnedAddressCount == 0)
    }

    @Test func macTableIsBounded() {
        let (network, ports) = makeNetwork(ports: 3, queueCapacity: 4096, macTableCapacity: 16)
        #expect(network.macTableCapacity == 16)
        for i in 0..<40 { ports[0].send(frame(to: .broadcast, from: mac(UInt8(i), 1))) }
        #expect(network.learnedAddressCount == 16)
        #expect(network.statistics.macTableEvictions == 24)
        _ = ports[1].drain()
        _ = ports[2].drain()
        ports[1].send(frame(to: mac(39, 1), from: mac(2), tag: 1))
        #expect(ports[0].drain().map(tag(of:)) == [1], "the newest address is still known")
        #expect(ports[2].drain().isEmpty)
        ports[1].send(frame(to: mac(0, 1), from: mac(2), tag: 2))
        #expect(ports[2].drain().map(tag(of:)) == [2], "the oldest address was evicted: flooded")
    }

    @Test func macTableKeepsRecentlySeenAddresses() {
        let (network, ports) = makeNetwork(ports: 3, queueCapacity: 4096, macTableCapacity: 4)
        ports[0].send(frame(to: .broadcast, from: mac(1)))
        for i in 10..<13 { ports[1].send(frame(to: .broadcast, from: mac(UInt8(i)))) }
        ports[0].send(frame(to: .broadcast, from: mac(1)))
        ports[1].send(frame(to: .broadcast, from: mac(13)))
        #expect(network.learnedAddressCount == 4)
        for port in ports { _ = port.drain() }
        ports[2].send(frame(to: mac(1), from: mac(3), tag: 1))
        #expect(ports[0].drain().count == 1)
        #expect(ports[1].drain().isEmpty, "mac(1) was refreshed, so mac(10) went instead")
        ports[2].send(frame(to: mac(10), from: mac(3), tag: 2))
        #expect(ports[0].drain().count == 1 && ports[1].drain().count == 1, "mac(10) floods")
    }

    @Test func sprayedSourceAddressesStayBounded() {
        let (network, ports) = makeNetwork(ports: 2, queueCapacity: 1)
        for i in 0..<20_000 {
            let source = MACAddress(rawValue: 0x0200_0000_0000 | UInt64(i))
            ports[0].send(frame(to: .broadcast, from: source))
        }
        #expect(network.learnedAddressCount == InternalNetwork.defaultMACTableCapacity)
        #expect(network.statistics.macTableEvictions == 20_000 - UInt64(InternalNetwork.defaultMACTableCapacity))
        #expect(network.statistics.framesDelivered + network.statistics.droppedQueueFull == 20_000)
    }

    @Test func metadataIsPassedOn() {
        let (_, ports) = makeNetwork(ports: 2)
        let metadata = FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 6))
        ports[0].send(frame(to: .broadcast, from: mac(1)), metadata: metadata)
        #expect(ports[1].nextInbound()?.metadata == metadata)
    }
}
