/// A named counter a user can read.
public struct Counter: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: UInt64

    public init(_ name: String, _ value: UInt64) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=\(value)" }
}

/// Everything a card needs from its host besides register accesses.
public struct CardEnvironment {
    /// Guest RAM.
    public var memory: any GuestMemory
    /// The INTx line, if wired.
    public var interruptLine: (any InterruptLine)?
    /// The MSI-X message sink, if the host supports MSI-X.
    public var msix: (any MSIXSink)?
    /// The device clock.
    public var clock: any DeviceClock

    public init(
        memory: any GuestMemory, interruptLine: (any InterruptLine)?, msix: (any MSIXSink)? = nil,
        clock: any DeviceClock
    ) {
        self.memory = memory
        self.interruptLine = interruptLine
        self.msix = msix
        self.clock = clock
    }
}

/// A network card as a host drives it: PCI config space, BARs, a frame port and a cable.
///
/// A card is a single-threaded state machine: the host serialises every call into one card. Hosts call the
/// ``barRead(_:offset:width:)`` and ``barWrite(_:offset:width:value:)`` entry points, which enforce the PCI rules
/// (decode enables, BAR bounds, legal widths) before the card's own ``readRegister(bar:offset:width:)`` and
/// ``writeRegister(bar:offset:width:value:)`` see the access.
public protocol NetworkCard: AnyObject {
    /// The model's short name, as the trace format and the CLI spell it (`am79c973`).
    var modelName: String { get }
    /// The MAC address the card was built with.
    var macAddress: MACAddress { get }
    /// The card's PCI configuration space.
    var config: PCIConfigSpace { get }
    /// The card's frame port.
    var port: FramePort { get }
    /// Whether the virtual cable is plugged in.
    var cableConnected: Bool { get set }
    /// Whether the card sees a link: cable connected and the attachment offering carrier.
    var linkUp: Bool { get }
    /// The card's counters, drops included.
    var counters: [Counter] { get }

    /// A decoded, width-checked register read. Hosts call ``barRead(_:offset:width:)`` instead.
    func readRegister(bar: Int, offset: UInt64, width: Int) -> UInt64
    /// A decoded, width-checked register write. Hosts call ``barWrite(_:offset:width:value:)`` instead.
    func writeRegister(bar: Int, offset: UInt64, width: Int, value: UInt64)
    /// Reacts to a config-space write (bus mastering enabled, BAR moved).
    func configDidChange(_ change: PCIConfigChange)
    /// Called by ``configRead(offset:width:)`` before the read, so a card can put live values into config space (the
    /// virtio PCI cfg access capability reads through to a BAR). Default: nothing.
    func configWillRead(offset: Int, width: Int)
    /// Called by ``configWrite(offset:width:value:)`` after every legal write, changed or not. Default: nothing.
    func configDidWrite(offset: Int, width: Int)
    /// Drains frames and link changes from the port. Hosts call it when ``FramePort/onWork`` fires.
    func service()
    /// Hardware reset (PCI RST#): every register to its power-on value.
    func reset()
}

extension NetworkCard {
    public func configWillRead(offset: Int, width: Int) {}
    public func configDidWrite(offset: Int, width: Int) {}

    /// Reads a config register; illegal widths read all-ones.
    public func configRead(offset: Int, width: Int) -> UInt32 {
        configWillRead(offset: offset, width: width)
        return config.read(offset: offset, width: width)
    }

    /// Writes a config register through its masks.
    public func configWrite(offset: Int, width: Int, value: UInt32) {
        let change = config.write(offset: offset, width: width, value: value)
        if !change.isEmpty { configDidChange(change) }
        configDidWrite(offset: offset, width: width)
    }

    /// All-ones of `width` bytes (8 for anything illegal).
    public static func allOnes(width: Int) -> UInt64 {
        (1...4).contains(width) ? (UInt64(1) << (8 * UInt64(width))) - 1 : UInt64.max
    }

    /// Reads `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// reads all-ones and has no side effect.
    public func barRead(_ bar: Int, offset: UInt64, width: Int) -> UInt64 {
        guard Self.isLegal(width: width), config.decodes(bar: bar), offset < config.barSize(bar),
            UInt64(width) <= config.barSize(bar) - offset
        else { return Self.allOnes(width: width) }
        return readRegister(bar: bar, offset: offset, width: width) & Self.allOnes(width: width)
    }

    /// Writes `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// is ignored.
    public func barWrite(_ bar: Int, offset: UInt64, width: Int, value: UInt64) {
        guard Self.isLegal(width: width), config.decodes(bar: bar), offset < config.barSize(bar),
            UInt64(width) <= config.barSize(bar) - offset
        else { return }
        writeRegister(bar: bar, offset: offset, width: width, value: value & Self.allOnes(width: width))
    }

    private static func isLegal(width: Int) -> Bool { width == 1 || width == 2 || width == 4 || width == 8 }
}
