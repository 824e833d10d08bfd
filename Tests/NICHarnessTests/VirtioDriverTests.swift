import NICCards
import NICCore
import NICHarness
import Testing
import VirtioNet

@Suite("VirtioDriver")
struct VirtioDriverTests {
    static let variants: [VirtioDriver.Options] = [
        VirtioDriver.Options(), VirtioDriver.Options(legacy: true), VirtioDriver.Options(packed: true),
        VirtioDriver.Options(mergeable: true, msix: true), VirtioDriver.Options(legacy: true, msix: true),
        VirtioDriver.Options(packed: true, mergeable: true, msix: true),
    ]

    private func opened(_ options: VirtioDriver.Options) throws -> VirtioDriver {
        let harness = try CardHarness(model: .virtio)
        let driver = VirtioDriver(harness: harness, options: options)
        driver.enableDevice()
        let identity = try driver.probe()
        #expect(identity.valid)
        #expect(identity.macAddress == harness.card.macAddress)
        do {
            try driver.open()
        } catch {
            Issue.record("\(error): \(harness.card.counters.filter { $0.value != 0 })")
            throw error
        }
        return driver
    }

    @Test(arguments: variants)
    func opensSendsAndReceives(options: VirtioDriver.Options) throws {
        let driver = try opened(options)
        let harness = driver.harness
        let mac = harness.card.macAddress
        for length in [60, 98, 1514] {
            let frame = Scenario.unicast(to: Scenario.peer, from: mac, length: length)
            #expect(try driver.transmit(frame))
            #expect(harness.nextTransmitted() == frame)
            let incoming = Scenario.unicast(to: mac, length: length)
            harness.receive(incoming)
            try driver.handleInterrupt()
            #expect(driver.received.last == incoming)
        }
        #expect(driver.receiveErrors == 0)
        #expect(driver.linkUp())
    }
}

extension VirtioDriverTests {
    @Test(arguments: [false, true])
    func ringsWrapAroundMoreThanOnce(packed: Bool) throws {
        let driver = try opened(VirtioDriver.Options(packed: packed))
        let harness = driver.harness
        let mac = harness.card.macAddress
        for round in 0..<600 {
            let frame = Scenario.unicast(to: Scenario.peer, from: mac, length: 60 + round % 50)
            #expect(try driver.transmit(frame))
            harness.receive(Scenario.unicast(to: mac, length: 64 + round % 70))
            if round % 7 == 0 { try driver.handleInterrupt() }
        }
        try driver.handleInterrupt()
        #expect(harness.transmitted.count == 600)
        #expect(driver.received.count == 600)
        #expect(driver.receiveErrors == 0)
    }

    @Test func controlCommandsAnswerAsTheDeviceDecides() throws {
        let driver = try opened(VirtioDriver.Options())
        // One queue pair: MQ is not offered, so open sends RX mode and the MAC table only.
        #expect(!driver.features.contains(.multiqueue))
        #expect(driver.controlAcks == [0, 0, 0])
        #expect(try driver.setReceiveMode(promiscuous: true, allMulticast: true))
        #expect(try driver.setMACTable(unicast: [Scenario.peer], multicast: [MACAddress("01:00:5e:00:00:01")!]))
        #expect(try driver.setMACAddress(MACAddress("52:54:00:ab:cd:ef")!))
        #expect(driver.harness.card.macAddress == MACAddress("52:54:00:12:34:56")!)
        #expect(try driver.filterVLAN(42, add: true))
        #expect(try driver.filterVLAN(42, add: false))
        #expect(try !driver.setQueuePairs(1))
        #expect(driver.controlAcks.suffix(1) == [1])
    }

    @Test func segmentationAndChecksumOffloadLeaveFinishedFrames() throws {
        let driver = try opened(VirtioDriver.Options())
        let harness = driver.harness
        let frame = Scenario.tcpFrame(from: harness.card.macAddress, payload: 4000)
        #expect(try driver.transmit(frame, offload: .tcp4(mss: 1460, frame: frame)))
        var segments: [[UInt8]] = []
        while let segment = harness.transmitted.next() { segments.append(segment) }
        #expect(segments.map(\.count) == [1514, 1514, 54 + 4000 - 2 * 1460])
        for segment in segments {
            #expect(InternetChecksum.of(Array(segment[14..<34])) == 0)
        }
        let small = Scenario.tcpFrame(from: harness.card.macAddress, payload: 100)
        #expect(try driver.transmit(small, offload: .checksum(start: 34, offset: 16)))
        let sent = try #require(harness.transmitted.next())
        #expect(sent.count == small.count)
        #expect(sent[50] != 0 || sent[51] != 0)
    }

    @Test(arguments: [false, true])
    func jumboFramesArriveOverMergeableBuffers(packed: Bool) throws {
        let harness = try CardHarness(model: .virtio)
        let driver = VirtioDriver(harness: harness, options: VirtioDriver.Options(packed: packed))
        driver.enableDevice()
        _ = try driver.identify()
        try driver.start(jumbo: true)
        let frame = Scenario.unicast(to: harness.card.macAddress, length: 9014)
        harness.receive(frame)
        try driver.serviceInterrupt()
        #expect(driver.received == [frame])
        #expect(driver.receivedHeaders.last?[10] == 6)
        #expect(
            try driver.send(
                MACAddress.broadcast.bytes + harness.card.macAddress.bytes + [0x88, 0xB5]
                    + [UInt8](repeating: 7, count: 9000)))
        #expect(harness.transmitted.next()?.count == 9014)
    }

    @Test(arguments: [false, true])
    func linkChangesRaiseConfigInterrupts(msix: Bool) throws {
        let driver = try opened(VirtioDriver.Options(msix: msix))
        driver.harness.setLink(up: false)
        try driver.handleInterrupt()
        #expect(driver.configChanges == 1)
        #expect(!driver.linkStatus)
        driver.harness.setLink(up: true)
        try driver.handleInterrupt()
        #expect(driver.configChanges == 2)
        #expect(driver.linkStatus)
    }

    @Test func resetStopsTheDeviceAndItComesBack() throws {
        let driver = try opened(VirtioDriver.Options())
        let harness = driver.harness
        try driver.resetDevice()
        #expect(driver.readStatus() == 0)
        harness.receive(Scenario.unicast(to: harness.card.macAddress, length: 64))
        #expect(driver.received.isEmpty)
        try driver.open()
        harness.receive(Scenario.unicast(to: harness.card.macAddress, length: 64))
        try driver.handleInterrupt()
        #expect(driver.received.count == 1)
    }
}
