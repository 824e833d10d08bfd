import NICCards
import NICCore
import NICTrace

/// What a card's Linux-like driver script offers the demo, the benchmark and the demo guest stack: probe, open,
/// send, take the interrupt, link state and close, whatever the chip.
public protocol GuestDriver: AnyObject {
    /// The harness the driver plays the guest in.
    var harness: CardHarness { get }
    /// Frames received so far, in order, without FCS.
    var received: [[UInt8]] { get }
    /// Transmissions the chip reported as failed.
    var transmitErrors: Int { get }
    /// pci_enable_device and pci_set_master: BARs placed, decoding and bus mastering on.
    func enableDevice()
    /// Probes the chip as the Linux driver does.
    func identify() throws(HarnessError) -> DriverIdentity
    /// Opens the interface with the driver's defaults (`jumbo`: MTU 9000 where the chip supports it).
    func start(jumbo: Bool) throws(HarnessError)
    /// Hands one frame to the chip; `false` when the ring is full.
    func send(_ frame: [UInt8]) throws(HarnessError) -> Bool
    /// Runs the interrupt handler: acknowledge, reap both rings.
    func serviceInterrupt() throws(HarnessError)
    /// The link as the driver sees it.
    func linkUp() -> Bool
    /// Stops the chip; returns the missed-frame count it reports.
    func stop() -> UInt64
}

/// What probing a card found, in the driver's words.
public struct DriverIdentity: Hashable, Sendable {
    /// The chip as Linux names it.
    public var chipName: String
    /// The MAC address in the card's PROM or EEPROM.
    public var macAddress: MACAddress
    /// Whether the PROM or EEPROM checksum held.
    public var valid: Bool
}

extension CardModel {
    /// The Linux-like driver script for this model.
    public func driver(for harness: CardHarness) throws(HarnessError) -> any GuestDriver {
        switch self {
        case .am79c970a, .am79c973: return PCNetDriver(harness: harness)
        case .e82540em, .e82543gc, .e82545em: return E1000Driver(harness: harness)
        case .virtio: return VirtioDriver(harness: harness)
        }
    }

    /// Whether the chip takes jumbo frames (the Intel cards, with RCTL.LPE; virtio-net, with mergeable buffers).
    public var supportsJumboFrames: Bool {
        switch self {
        case .e82540em, .e82543gc, .e82545em, .virtio: return true
        case .am79c970a, .am79c973: return false
        }
    }
}

extension PCNetDriver: GuestDriver {
    public func identify() throws(HarnessError) -> DriverIdentity {
        let probe = try probe()
        return DriverIdentity(chipName: probe.chipName, macAddress: probe.macAddress, valid: probe.promValid)
    }

    /// The PCnet has no jumbo mode: `jumbo` changes nothing (the chip drops frames over 1518 bytes).
    public func start(jumbo: Bool) throws(HarnessError) { try open() }

    public func send(_ frame: [UInt8]) throws(HarnessError) -> Bool { try transmit(frame) }

    public func serviceInterrupt() throws(HarnessError) { try handleInterrupt() }

    public func stop() -> UInt64 { UInt64(close()) }

    /// The link at the Am79C973's PHY address (BCR4 on the Am79C970A).
    public func linkUp() -> Bool { linkUp(phy: 0x1E) }
}

extension E1000Driver: GuestDriver {
    public func identify() throws(HarnessError) -> DriverIdentity {
        let probe = try probe()
        return DriverIdentity(
            chipName: "\(harness.model.rawValue.uppercased()), PHY \(Hex.number(probe.phyID))",
            macAddress: probe.macAddress,
            valid: probe.checksumValid
                && probe.phyID & 0xFFFF_FFF0 == (harness.model == .e82543gc ? 0x0141_0C50 : 0x0141_0C20))
    }

    public func start(jumbo: Bool) throws(HarnessError) { try open(jumbo: jumbo) }

    public func send(_ frame: [UInt8]) throws(HarnessError) -> Bool { try transmit(frame) }

    public func serviceInterrupt() throws(HarnessError) { try handleInterrupt() }

    public func stop() -> UInt64 { UInt64(close()) }
}
