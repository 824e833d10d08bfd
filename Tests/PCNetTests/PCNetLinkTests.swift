import NICCards
import NICCore
import NICHarness
import PCNet
import Testing

extension PCNetBench {
    /// MII management write through BCR33/BCR34.
    func mdioWrite(phy: Int, register: Int, _ value: UInt16) {
        setBCR(33, UInt16((phy & 0x1F) << 5 | (register & 0x1F)))
        setBCR(34, value)
    }

    func mdioRead(phy: Int = 0x1E, register: Int) -> UInt16 { driver.mdioRead(phy: phy, register: register) }
}

/// BMSR bits.
enum BMSR {
    static let linkStatus: UInt16 = 0x0004
    static let autoNegotiationComplete: UInt16 = 0x0020
    static let autoNegotiationAbility: UInt16 = 0x0008
    static let full100: UInt16 = 0x4000
    static let half100: UInt16 = 0x2000
    static let full10: UInt16 = 0x1000
    static let half10: UInt16 = 0x0800
}

@Suite("PCnet link state, the Am79C973's MII PHY and the Am79C970A without one")
struct PCNetLinkTests {
    @Test func phyIdentityAndAddressScan() throws {
        let bench = try PCNetBench(.am79c973, ramSize: 1 << 20)
        #expect(bench.mdioRead(register: 2) == 0x0022)
        #expect(bench.mdioRead(register: 3) == 0x561B)
        for phy in 0..<32 where phy != 0x1E {
            #expect(bench.mdioRead(phy: phy, register: 2) == 0xFFFF)
            #expect(bench.mdioRead(phy: phy, register: 1) == 0xFFFF)
        }
        #expect(bench.bcr(33) == 0x1E << 5)  // BCR33 points at the internal PHY after reset
        #expect(bench.bcr(35) == 0x1022)
        #expect(try bench.driver.probe().phyAddresses == [0x1E])
    }

    @Test func noMIIOnTheAm79C970A() throws {
        let bench = try PCNetBench(.am79c970a, ramSize: 1 << 20)
        for phy in [0, 1, 0x1E, 0x1F] {
            for register in [0, 1, 2, 3, 5] {
                #expect(bench.mdioRead(phy: phy, register: register) == 0xFFFF)
            }
        }
        bench.setBCR(32, 0x0080)
        bench.setBCR(33, 0x03C2)
        #expect(bench.bcr(32) == 0)
        #expect(bench.bcr(33) == 0)
        #expect(bench.bcr(34) == 0xFFFF)
        #expect(try bench.driver.probe().phyAddresses.isEmpty)
    }

    @Test(arguments: pcnetModels)
    func bcr4FollowsTheLink(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        #expect(bench.bcr(4) == 0x80C0)
        #expect(bench.driver.linkUp())
        bench.harness.setLink(up: false)
        #expect(bench.bcr(4) == 0x00C0)
        #expect(!bench.driver.linkUp())
        bench.harness.setLink(up: true)
        #expect(bench.bcr(4) == 0x80C0)
        #expect(bench.driver.linkUp())
        // The attachment's carrier counts as much as the cable.
        bench.card.port.detach()
        bench.card.service()
        #expect(bench.bcr(4) == 0x00C0)
        #expect(!bench.driver.linkUp())
        bench.card.port.attach(bench.harness.transmitted)
        bench.card.service()
        #expect(bench.driver.linkUp())
        // LEDOUT shows the link only through the link-status enable (bit 6).
        bench.setBCR(4, 0x0080)
        #expect(bench.bcr(4) == 0x0080)
        bench.setBCR(4, 0xFFC0)  // bit 15 is not writable
        #expect(bench.bcr(4) == 0xFFC0)
        bench.harness.setLink(up: false)
        #expect(bench.bcr(4) == 0x7FC0)
    }

    /// An unplugged card hears nothing, whatever its attachment still delivers.
    @Test(arguments: pcnetModels)
    func noReceiveWhileTheLinkIsDown(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.harness.setLink(up: false)
        bench.harness.receive(makeFrame(to: bench.mac))
        #expect(try bench.receiveRing.isOwned(0))
        #expect(bench.counter("rx_dropped_link_down") == 1)
        #expect(!bench.interrupt)
        bench.harness.setLink(up: true)
        let incoming = makeFrame(to: bench.mac, seed: 4)
        bench.harness.receive(incoming)
        try bench.driver.handleInterrupt()
        #expect(bench.driver.received == [incoming])
    }

    @Test func bmsrLinkStatusLatchesLow() throws {
        let bench = try PCNetBench.running(.am79c973)
        _ = bench.mdioRead(register: 1)
        #expect(bench.mdioRead(register: 1) & BMSR.linkStatus != 0)
        // Unplugged and plugged back in before the driver looked: the first read still reports the drop.
        bench.harness.setLink(up: false)
        bench.harness.setLink(up: true)
        #expect(bench.mdioRead(register: 1) & BMSR.linkStatus == 0)
        #expect(bench.mdioRead(register: 1) & BMSR.linkStatus != 0)
        // While unplugged every read reports link down.
        bench.harness.setLink(up: false)
        #expect(bench.mdioRead(register: 1) & BMSR.linkStatus == 0)
        #expect(bench.mdioRead(register: 1) & BMSR.linkStatus == 0)
    }

    @Test func linkPartnerAbilityOnlyWhenLinked() throws {
        let bench = try PCNetBench.running(.am79c973)
        let partner = bench.mdioRead(register: 5)
        #expect(partner & 0x01E0 == 0x01E0)  // 10/100, half and full
        #expect(partner & 0x001F == 0x0001)  // IEEE 802.3
        #expect(bench.mdioRead(register: 6) & 0x0001 != 0)  // the partner negotiates
        // The advertisement has no pause bit (Windows' link-speed detection trips over it).
        #expect(bench.mdioRead(register: 4) & 0x0400 == 0)
        bench.harness.setLink(up: false)
        #expect(bench.mdioRead(register: 5) == 0)
        #expect(bench.mdioRead(register: 6) == 0)
    }

    /// BCR32: with DANAS clear the MAC drives the PHY (XPHYANE, or XPHYFD/XPHYSP forced); with DANAS set software
    /// programs the PHY through its own registers.
    @Test func bcr32DrivesThePHYUnlessDANAS() throws {
        let bench = try PCNetBench.running(.am79c973)  // Linux leaves DANAS clear and XPHYANE set
        #expect(bench.bcr(32) & 0x00B8 == 0x0020)
        #expect(bench.mdioRead(register: 0) == 0x3100)  // autonegotiation, 100 Mbit/s, full duplex
        _ = bench.mdioRead(register: 1)
        var bmsr = bench.mdioRead(register: 1)
        #expect(bmsr & (BMSR.autoNegotiationComplete | BMSR.autoNegotiationAbility | BMSR.linkStatus) == 0x002C)

        // Forced 100 Mbit/s half duplex.
        bench.setBCR(32, 0x0008)
        #expect(bench.mdioRead(register: 0) == 0x2000)
        bmsr = bench.mdioRead(register: 1)
        #expect(bmsr & (BMSR.autoNegotiationComplete | BMSR.autoNegotiationAbility) == 0)
        #expect(bmsr & (BMSR.full100 | BMSR.half100 | BMSR.full10 | BMSR.half10) == BMSR.half100)
        // Forced 10 Mbit/s full duplex.
        bench.setBCR(32, 0x0010)
        #expect(bench.mdioRead(register: 0) == 0x0100)
        #expect(bench.mdioRead(register: 1) & (BMSR.full100 | BMSR.half100 | BMSR.full10 | BMSR.half10) == BMSR.full10)
        // A BMCR write does not matter while the MAC drives the PHY...
        bench.mdioWrite(phy: 0x1E, register: 0, 0x1000)
        #expect(bench.mdioRead(register: 0) == 0x0100)
        // ...and rules once DANAS hands the PHY to software.
        bench.setBCR(32, 0x0080)
        #expect(bench.mdioRead(register: 0) == 0x1000)
        bench.mdioWrite(phy: 0x1E, register: 0, 0x2100)
        #expect(bench.mdioRead(register: 0) == 0x2100)
        // Writes to other PHY addresses go nowhere.
        bench.mdioWrite(phy: 3, register: 0, 0x0000)
        #expect(bench.mdioRead(register: 0) == 0x2100)
        // A PHY reset restores the defaults.
        bench.mdioWrite(phy: 0x1E, register: 0, 0x8000)
        #expect(bench.mdioRead(register: 0) == 0x3100)
    }

    @Test(arguments: pcnetModels)
    func transmitWhileTheLinkIsDown(model: CardModel) throws {
        let bench = try PCNetBench.running(model)
        bench.harness.setLink(up: false)
        try bench.driver.transmit(makeFrame(to: peerAddress))
        #expect(bench.sentFrames().isEmpty)
        #expect(try bench.transmitRing.transmitErrors(0) == TransmitErrorBits.lcar)
        #expect(try bench.transmitRing.status(0) == StatusBits.err | StatusBits.stp | StatusBits.enp)
        #expect(bench.counter("tx_dropped_link_down") == 1)
        #expect(bench.csr(0) & CSR0Bits.tint != 0)
        try bench.driver.handleInterrupt()
        #expect(bench.driver.transmitErrors == 1)

        bench.harness.setLink(up: true)
        let outgoing = makeFrame(to: peerAddress, seed: 1)
        try bench.driver.transmit(outgoing)
        #expect(bench.sentFrames() == [outgoing])
        #expect(try bench.transmitRing.transmitErrors(1) == 0)
    }
}
