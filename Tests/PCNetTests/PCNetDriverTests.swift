import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

let pcnetModels: [CardModel] = [.am79c970a, .am79c973]

func broadcastFrame(from source: MACAddress, payload: UInt8 = 0x42, length: Int = 60) -> [UInt8] {
    var frame = MACAddress.broadcast.bytes + source.bytes + [0x08, 0x00]
    frame += [UInt8](repeating: payload, count: max(0, length - frame.count))
    return frame
}

func unicastFrame(to destination: MACAddress, from source: MACAddress, length: Int = 60) -> [UInt8] {
    var frame = destination.bytes + source.bytes + [0x08, 0x00]
    frame += (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0) }
    return frame
}

@Suite("PCnet driven the way Linux's pcnet32 drives it")
struct PCNetDriverTests {
    @Test(arguments: pcnetModels)
    func probeFindsTheChip(model: CardModel) throws {
        let harness = try CardHarness(model: model)
        let driver = PCNetDriver(harness: harness)
        driver.enableDevice()
        let probe = try driver.probe()
        #expect(probe.wordIO)
        #expect(probe.chipVersion & 0xFFF == 3)
        #expect(probe.partNumber == (model == .am79c970a ? 0x2621 : 0x2625))
        #expect(probe.macAddress == harness.card.macAddress)
        #expect(probe.registerAddress == harness.card.macAddress)
        #expect(probe.promValid)
        #expect(probe.phyAddresses == (model == .am79c973 ? [0x1E] : []))
    }

    @Test(arguments: pcnetModels, [0, 2, 3])
    func transmitsAndReceivesInEverySoftwareStyle(model: CardModel, style: Int) throws {
        let harness = try CardHarness(model: model)
        let driver = PCNetDriver(harness: harness)
        driver.enableDevice()
        _ = try driver.probe()
        try driver.open(style: style)
        #expect(driver.linkUp())
        let mac = harness.card.macAddress
        let outgoing = broadcastFrame(from: mac)
        try driver.transmit(outgoing)
        #expect(harness.nextTransmitted() == outgoing)
        #expect(harness.interruptLevel())
        try driver.handleInterrupt()
        #expect(!harness.interruptLevel())
        #expect(driver.transmitErrors == 0)

        let peer = MACAddress("02:00:00:00:00:02")!
        let incoming = unicastFrame(to: mac, from: peer, length: 100)
        harness.receive(incoming)
        #expect(harness.interruptLevel())
        try driver.handleInterrupt()
        #expect(driver.received == [incoming])
        #expect(driver.receiveErrors == 0)
        #expect(driver.close() == 0)
    }
}
