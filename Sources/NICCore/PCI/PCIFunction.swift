/// What a card's PCI function reports back to the card: its register file behind the BARs and the config-space and
/// cable events it reacts to. Package access: hosts reach these only through ``PCIFunction``'s checked entry points.
package protocol PCIFunctionCard: AnyObject {
    /// A decoded, width-checked register read (``PCIFunction/barRead(_:offset:width:)`` checked the access).
    func readRegister(bar: Int, offset: UInt64, width: Int) -> UInt64
    /// A decoded, width-checked register write (``PCIFunction/barWrite(_:offset:width:value:)`` checked the access).
    func writeRegister(bar: Int, offset: UInt64, width: Int, value: UInt64)
    /// Reacts to a config-space write that changed something (the INTx pin has already followed the command
    /// register).
    func configDidChange(_ change: PCIConfigChange)
    /// Called before every legal config read, so a card can put live values into config space (the virtio PCI cfg
    /// access capability reads through to a BAR). Default: nothing.
    func configWillRead(offset: Int, width: Int)
    /// Called after every legal config write, changed or not. Default: nothing.
    func configDidWrite(offset: Int, width: Int)
    /// The cable was plugged or pulled (``PCIFunction/cableConnected`` changed).
    func cableDidChange()
}

extension PCIFunctionCard {
    package func configDidChange(_ change: PCIConfigChange) {}
    package func configWillRead(offset: Int, width: Int) {}
    package func configDidWrite(offset: Int, width: Int) {}
}

/// The PCI function every card is built on: config space, the BAR gate, the bus-master DMA gate, the INTx pin, the
/// frame port and the cable. A card composes one and registers itself as its `PCIFunctionCard`; hosts reach the
/// card's registers only through the checked entry points here.
///
/// Like the card, a function is single-threaded: the host serialises every call.
public final class PCIFunction {
    /// The function's configuration space.
    public let config: PCIConfigSpace
    /// The frame port between the card and its attachment.
    public let port: FramePort
    /// Guest memory behind the command register's bus-master gate.
    package let dma: BusMaster
    /// The INTx pin, behind the command register's interrupt-disable bit.
    package let pin: INTxPin
    /// The card behind the BARs; set once by the card's initialiser.
    package weak var card: (any PCIFunctionCard)?

    /// Whether the virtual cable is plugged in.
    @exclusivity(unchecked) public var cableConnected = true {
        didSet { if cableConnected != oldValue { card?.cableDidChange() } }
    }

    /// Whether the card sees a link: cable connected and the attachment offering carrier.
    @inlinable public var linkUp: Bool { cableConnected && port.carrier }

    /// Creates a function with `config`, whose DMA goes to `environment`'s memory and whose pin drives its line.
    package init(config: PCIConfigSpace, environment: CardEnvironment) {
        self.config = config
        port = FramePort()
        dma = BusMaster(memory: environment.memory, config: config)
        pin = INTxPin(line: environment.interruptLine, config: config)
        dma.refresh()
    }

    /// PCI RST# for the function's own parts: config space to its power-on values, the pin re-evaluated.
    package func reset() {
        config.reset()
        pin.refresh()
        dma.refresh()
    }

    // MARK: Config space

    /// Reads a config register; illegal widths read all-ones.
    public func configRead(offset: Int, width: Int) -> UInt32 {
        card?.configWillRead(offset: offset, width: width)
        return config.read(offset: offset, width: width)
    }

    /// Writes a config register through its masks.
    public func configWrite(offset: Int, width: Int, value: UInt32) {
        let change = config.write(offset: offset, width: width, value: value)
        if !change.isEmpty {
            if change.contains(.command) { pin.refresh() }
            dma.refresh()
            card?.configDidChange(change)
        }
        card?.configDidWrite(offset: offset, width: width)
    }

    // MARK: BARs

    /// All-ones of `width` bytes (8 for anything illegal).
    @inlinable public static func allOnes(width: Int) -> UInt64 {
        (1...4).contains(width) ? (UInt64(1) << (8 * UInt64(width))) - 1 : UInt64.max
    }

    /// Reads `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// reads all-ones and has no side effect.
    public func barRead(_ bar: Int, offset: UInt64, width: Int) -> UInt64 {
        guard isLegal(bar, offset: offset, width: width), let card else { return Self.allOnes(width: width) }
        return card.readRegister(bar: bar, offset: offset, width: width) & Self.allOnes(width: width)
    }

    /// Writes `width` bytes at `offset` of BAR `bar`. An undecoded BAR, an offset past its end or an illegal width
    /// is ignored.
    public func barWrite(_ bar: Int, offset: UInt64, width: Int, value: UInt64) {
        guard isLegal(bar, offset: offset, width: width), let card else { return }
        card.writeRegister(bar: bar, offset: offset, width: width, value: value & Self.allOnes(width: width))
    }

    private func isLegal(_ bar: Int, offset: UInt64, width: Int) -> Bool {
        guard width == 1 || width == 2 || width == 4 || width == 8, config.decodes(bar: bar) else { return false }
        let size = config.barSize(bar)
        return offset < size && UInt64(width) <= size - offset
    }
}
