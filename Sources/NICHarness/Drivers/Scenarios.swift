import NICCards
import NICCore
import NICTrace

/// The driver-script scenarios recorded as fixtures in `Fixtures/traces/`: each runs one card through a piece of a
/// Linux driver session with a ``TraceRecorder`` attached.
public struct Scenario: Sendable {
    /// The fixture's file name without extension, e.g. `am79c973-transmit`.
    public var name: String
    public var model: CardModel
    /// What the scenario shows, for the trace's first comment.
    public var summary: String
    let body: @Sendable (CardHarness) throws -> Void

    /// Runs the scenario on a fresh harness and returns the recorded trace.
    public func record() throws(HarnessError) -> Trace {
        let harness = try CardHarness(model: model)
        let recorder = TraceRecorder.attach(to: harness, title: summary)
        do {
            try body(harness)
        } catch let error as HarnessError {
            throw error
        } catch {
            throw HarnessError("\(name): \(error)")
        }
        return recorder.trace
    }

    /// Every scenario for every implemented card.
    public static var all: [Scenario] { CardModel.implemented.flatMap(scenarios(for:)) }

    /// The scenarios for `model`.
    public static func scenarios(for model: CardModel) -> [Scenario] {
        switch model {
        case .am79c970a, .am79c973: return pcnetScenarios(model)
        case .e82540em, .e82543gc, .e82545em: return e1000Scenarios(model)
        case .virtio: return virtioScenarios()
        }
    }

    public static let peer = MACAddress("02:00:00:00:00:02")!

    private static func pcnetScenarios(_ model: CardModel) -> [Scenario] {
        func make(_ suffix: String, _ summary: String, _ body: @escaping @Sendable (PCNetDriver) throws -> Void)
            -> Scenario
        {
            Scenario(name: "\(model.rawValue)-\(suffix)", model: model, summary: summary) { harness in
                let driver = PCNetDriver(harness: harness)
                driver.enableDevice()
                _ = try driver.probe()
                try body(driver)
            }
        }
        var scenarios = [
            make("probe", "pcnet32 probe: WIO reset, CSR0 == 4, RAP check, chip ID, APROM, MII scan") { _ in },
            make("dwio", "switch to DWIO with a 32-bit RDP write, reset and identify through the DWIO ports") {
                driver in
                driver.switchToDoubleWordIO()
                driver.reset()
                _ = driver.readCSR(0)
                _ = driver.harness.read(bar: 0, offset: 0x14, width: 4)
                _ = driver.readCSR(88)
                _ = driver.harness.read(bar: 0, offset: 0x00, width: 4, comment: "APROM as a double word")
                _ = driver.harness.read(bar: 0, offset: 0x12, width: 2, comment: "word access in DWIO reads all-ones")
            },
        ]
        for style in [0, 2, 3] {
            scenarios.append(
                make("init-swstyle\(style)", "open with software style \(style): INIT, IDON, STRT, then close") {
                    driver in
                    try driver.open(style: style)
                    _ = driver.linkUp()
                    driver.close()
                })
        }
        scenarios += [
            make("transmit", "open, send a broadcast frame, take the TINT interrupt") { driver in
                try oneFrame(driver, transmit: true)
            },
            make("receive", "open, receive a unicast frame, take the RINT interrupt and read it") { driver in
                try oneFrame(driver, transmit: false)
            },
            make("miss", "open with no receive buffer owned: a frame is missed (MISS, CSR112 = 1)") { driver in
                try driver.open(receiveOwned: 0)
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 64))
                _ = driver.harness.interruptLevel()
                let cause = driver.readCSR(0)
                driver.writeCSR(0, cause & ~0x004F)
                _ = driver.harness.interruptLevel()
                driver.close()
            },
            make("loopback", "internal loopback (CSR15 LOOP|INTL): a frame sent to itself comes back") { driver in
                try driver.open(mode: 0x0044)
                let mac = driver.harness.card.macAddress
                try driver.transmit(unicast(to: mac, from: mac, length: 80))
                _ = driver.harness.transmittedCount()
                try driver.handleInterrupt()
                driver.close()
            },
            make("link", "cable unplugged and plugged back: the link check follows") { driver in
                try cableCycle(driver, serviceEach: false)
            },
        ]
        return scenarios
    }

    private static func e1000Scenarios(_ model: CardModel) -> [Scenario] {
        func make(_ suffix: String, _ summary: String, _ body: @escaping @Sendable (E1000Driver) throws -> Void)
            -> Scenario
        {
            Scenario(name: "\(model.rawValue)-\(suffix)", model: model, summary: summary) { harness in
                let driver = E1000Driver(harness: harness)
                driver.enableDevice()
                // The full probe reads all 64 EEPROM words bit by bit; the scenarios after it only reset the chip.
                if suffix == "probe" { _ = try driver.probe() } else { driver.resetHardware() }
                try body(driver)
            }
        }
        let phyPath = model == .e82543gc ? "MDIO bit-banged through CTRL" : "MDIC"
        let resetPath = model == .e82543gc ? "CTRL.RST" : "CTRL.RST through IOADDR/IODATA"
        var scenarios = [
            make(
                "probe", "e1000 probe: \(resetPath), 64 EEPROM words bit-banged through EECD, PHY ID through \(phyPath)"
            ) {
                _ in
            }
        ]
        if model != .e82543gc {
            scenarios.append(
                make("eerd", "the EEPROM through EERD: MAC words, IDs and the checksum word") { driver in
                    for word in [0, 1, 2, 0x0B, 0x0D, 0x3F] { _ = driver.readEEPROMThroughEERD(word: word) }
                })
        }
        scenarios += [
            make("open-close", "open: RA, MTA, SLU, PHY autonegotiation, rings, RCTL, TCTL, IMS; then close") {
                driver in
                try driver.open()
                _ = driver.linkUp()
                driver.close()
            },
            make("transmit", "open, send a broadcast frame, take the TXDW interrupt and reap the descriptor") {
                driver in
                try oneFrame(driver, transmit: true, settle: true)
            },
            make("transmit-tso", "TCP segmentation offload: a 4000-byte payload leaves as three 1460-byte-MSS segments")
            {
                driver in
                try driver.open()
                try driver.transmitTSO(tcpFrame(from: driver.harness.card.macAddress, payload: 4000), mss: 1460)
                for _ in 0..<3 { _ = driver.harness.nextTransmitted() }
                _ = driver.harness.transmittedCount()
                driver.harness.advance(nanoseconds: 200_000)
                try driver.handleInterrupt()
                driver.close()
            },
            make("receive", "open, receive a unicast frame, take the RXT0 interrupt and read it") { driver in
                try oneFrame(driver, transmit: false, settle: true)
            },
            make(
                "receive-jumbo", "MTU 9000: RCTL.LPE with 4096-byte buffers; a 9014-byte frame spans three descriptors"
            ) {
                driver in
                try driver.open(jumbo: true)
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 9014))
                driver.harness.advance(nanoseconds: 200_000)
                try driver.handleInterrupt()
                driver.close()
            },
            make("vlan", "CTRL.VME strips a received 802.1Q tag; VLE inserts one on transmit") { driver in
                try driver.open(vlanStrip: true)
                let mac = driver.harness.card.macAddress
                let plain = unicast(to: mac, length: 98)
                driver.harness.receive(Array(plain[0..<12]) + [0x81, 0x00, 0x00, 0x2A] + Array(plain[12...]))
                driver.harness.advance(nanoseconds: 200_000)
                try driver.handleInterrupt()
                try driver.transmit(broadcast(from: mac), vlan: 0x002A)
                _ = driver.harness.nextTransmitted()
                driver.close()
            },
            make("receive-wait", "no receive descriptor: the frame waits in the chip; RDT moves and it arrives (RXT0)")
            {
                driver in
                try driver.open(receiveOwned: 0)
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 64))
                _ = driver.harness.interruptLevel()
                _ = driver.read(E1000Driver.Register.rdh, comment: "nothing written yet")
                driver.giveReceiveBuffers()
                driver.harness.advance(nanoseconds: 200_000)
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                driver.close()
            },
            make("link", "cable unplugged and plugged back: LSC each time, STATUS.LU follows") { driver in
                try cableCycle(driver, serviceEach: true)
            },
        ]
        return scenarios
    }

    /// The steps every card's frame scenarios share, through its ``GuestDriver``: open, one frame, the interrupt
    /// (the line's level read before it and, with `levelAfter`, after it), close. `settle` runs the chip's interrupt
    /// delay timers first (the e1000's RDTR/TIDV, 200 µs).
    static func oneFrame(
        _ driver: any GuestDriver, transmit: Bool, settle: Bool = false, levelAfter: Bool = true
    ) throws {
        let harness = driver.harness
        try driver.start(jumbo: false)
        if transmit {
            _ = try driver.send(broadcast(from: harness.card.macAddress))
            _ = harness.nextTransmitted()
        } else {
            harness.receive(unicast(to: harness.card.macAddress, length: 98))
        }
        if settle { harness.advance(nanoseconds: 200_000) }
        _ = harness.interruptLevel()
        try driver.serviceInterrupt()
        if levelAfter { _ = harness.interruptLevel() }
        _ = driver.stop()
    }

    /// The cable pulled and plugged back while the interface is open, the driver checking the link after each (and
    /// first taking the link-change interrupt, with `serviceEach`).
    static func cableCycle(_ driver: any GuestDriver, serviceEach: Bool) throws {
        try driver.start(jumbo: false)
        _ = driver.linkUp()
        for up in [false, true] {
            driver.harness.setLink(up: up)
            if serviceEach { try driver.serviceInterrupt() }
            _ = driver.linkUp()
        }
        _ = driver.stop()
    }

    /// An Ethernet/IPv4/TCP frame from `source` to ``peer`` carrying `payload` bytes (10.0.0.1:40000 to
    /// 10.0.0.2:80, ACK|PSH), checksums left for the chip.
    public static func tcpFrame(from source: MACAddress, payload: Int) -> [UInt8] {
        let total = 20 + 20 + payload
        var frame = peer.bytes + source.bytes + [0x08, 0x00]
        frame += [
            0x45, 0, UInt8(truncatingIfNeeded: total >> 8), UInt8(truncatingIfNeeded: total), 0x12, 0x34, 0x40, 0,
        ]
        frame += [64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        frame += [0x9C, 0x40, 0x00, 0x50, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        frame += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 3) }
        return frame
    }

    /// A 60-byte broadcast ARP-like frame from `source`.
    public static func broadcast(from source: MACAddress) -> [UInt8] {
        MACAddress.broadcast.bytes + source.bytes + [0x08, 0x06] + (0..<46).map { UInt8($0) }
    }

    /// A unicast IPv4-typed frame of `length` bytes.
    public static func unicast(to destination: MACAddress, from source: MACAddress = peer, length: Int) -> [UInt8] {
        destination.bytes + source.bytes + [0x08, 0x00]
            + (0..<max(0, length - 14)).map { UInt8(truncatingIfNeeded: $0 * 7) }
    }
}
