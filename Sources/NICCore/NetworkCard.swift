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

/// A network card as a host drives it: a PCI function (config space, BARs, a frame port and a cable) and the model
/// behind it.
///
/// A card is a single-threaded state machine: the host serialises every call into one card. Hosts reach its
/// registers through ``barRead(_:offset:width:)`` and ``barWrite(_:offset:width:value:)``, which enforce the PCI
/// rules (decode enables, BAR bounds, legal widths) in ``PCIFunction`` before the card sees the access.
public protocol NetworkCard: AnyObject {
    /// The model's short name, as the trace format and the CLI spell it (`am79c973`).
    var modelName: String { get }
    /// The MAC address the card was built with.
    var macAddress: MACAddress { get }
    /// The card's PCI function: config space, BAR and DMA gates, INTx pin, frame port and cable.
    var function: PCIFunction { get }
    /// The card's PCI configuration space (its function's; the default reads it from ``function``).
    var config: PCIConfigSpace { get }
    /// The card's frame port (its function's; the default reads it from ``function``). Cards store it, so a host
    /// that reaches it per frame through `any NetworkCard` pays one witness call.
    var port: FramePort { get }
    /// The card's counters, drops included.
    var counters: [Counter] { get }

    /// Drains frames and link changes from the port. Hosts call it when ``FramePort/onWork`` fires.
    func service()
    /// Hardware reset (PCI RST#): every register to its power-on value.
    func reset()
}

extension NetworkCard {
    /// The function's configuration space.
    @inlinable public var config: PCIConfigSpace { function.config }
    /// The function's frame port.
    @inlinable public var port: FramePort { function.port }

    /// Whether the virtual cable is plugged in.
    @inlinable public var cableConnected: Bool {
        get { function.cableConnected }
        set { function.cableConnected = newValue }
    }

    /// Whether the card sees a link: cable connected and the attachment offering carrier.
    @inlinable public var linkUp: Bool { function.linkUp }

    /// Reads a config register; illegal widths read all-ones.
    @inlinable public func configRead(offset: Int, width: Int) -> UInt32 {
        function.configRead(offset: offset, width: width)
    }

    /// Writes a config register through its masks.
    @inlinable public func configWrite(offset: Int, width: Int, value: UInt32) {
        function.configWrite(offset: offset, width: width, value: value)
    }

    /// Reads `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// reads all-ones and has no side effect.
    @inlinable public func barRead(_ bar: Int, offset: UInt64, width: Int) -> UInt64 {
        function.barRead(bar, offset: offset, width: width)
    }

    /// Writes `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// is ignored.
    @inlinable public func barWrite(_ bar: Int, offset: UInt64, width: Int, value: UInt64) {
        function.barWrite(bar, offset: offset, width: width, value: value)
    }

    /// All-ones of `width` bytes (8 for anything illegal).
    @inlinable public static func allOnes(width: Int) -> UInt64 { PCIFunction.allOnes(width: width) }
}
