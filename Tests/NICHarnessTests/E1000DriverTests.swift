import NICCards
import NICCore
import NICHarness
import Testing

/// The e1000 driver script against each Intel card: what Linux's probe and open would find.
@Suite("e1000 driver script")
struct E1000DriverTests {
    static let intel: [CardModel] = [.e82540em, .e82543gc, .e82545em]

    @Test(arguments: intel)
    func probeFindsTheEEPROMAndThePHY(model: CardModel) throws {
        let mac = MACAddress("52:54:00:ab:cd:ef")!
        let harness = try CardHarness(model: model, macAddress: mac)
        let driver = E1000Driver(harness: harness)
        #expect(driver.ioBAR != nil, "the card has an I/O BAR for IOADDR/IODATA")
        driver.enableDevice()
        let probe = try driver.probe()
        #expect(probe.checksumValid, "EEPROM words sum to 0xBABA")
        #expect(probe.macAddress == mac)
        #expect(probe.phyID & 0xFFFF_FFF0 == (model == .e82543gc ? 0x0141_0C50 : 0x0141_0C20))
        if model == .e82543gc {
            #expect(driver.readEEPROMThroughEERD(word: 0) == nil, "the 82543GC has no EERD")
        } else {
            for word in [0, 1, 2, 0x0B, 0x3F] {
                #expect(driver.readEEPROMThroughEERD(word: word) == probe.eeprom[word], "EERD word \(word)")
            }
        }
    }

    @Test(arguments: intel)
    func openSendReceiveAndSegment(model: CardModel) throws {
        let harness = try CardHarness(model: model)
        let driver = E1000Driver(harness: harness)
        driver.enableDevice()
        _ = try driver.probe()
        try driver.open(jumbo: true)
        #expect(driver.linkUp())
        let mac = harness.card.macAddress

        // A 9014-byte frame spread over three 4096-byte buffers comes back whole.
        let jumbo = Scenario.unicast(to: mac, length: 9014)
        harness.receive(jumbo)
        harness.advance(nanoseconds: 100_000)
        #expect(harness.interruptLevel())
        let cause = try driver.handleInterrupt()
        #expect(cause & E1000Driver.Cause.rxt0 != 0)
        #expect(driver.received == [jumbo])

        // TSO: 4000 payload bytes at MSS 1000 leave as four segments whose payloads add up to the original.
        let frame = Scenario.tcpFrame(from: mac, payload: 4000)
        #expect(try driver.transmitTSO(frame, mss: 1000))
        var payload: [UInt8] = []
        for index in 0..<4 {
            let segment = try #require(harness.nextTransmitted(), "segment \(index)")
            #expect(segment.count == 54 + 1000)
            #expect(InternetChecksum.of(Array(segment[14..<34])) == 0, "IP header checksum of segment \(index)")
            payload += segment[54...]
        }
        #expect(harness.nextTransmitted() == nil)
        #expect(payload == Array(frame[54...]))
    }
}
