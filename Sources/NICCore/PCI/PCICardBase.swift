/// What every card built on a ``PCIFunction`` stores: its MAC address, the function, and the parts of the function
/// the data path reaches per frame.
///
/// The port, config space, DMA gate and pin are held here as well as in the function: a stored reference in the
/// card costs no call and no reference counting, where reaching them through ``function`` costs a retain and a
/// release per frame. A card subclasses this class and conforms to ``NetworkCard``, whose `macAddress`,
/// `function`, `port` and `config` requirements these stored properties meet.
open class PCICardBase {
    /// The MAC address the card was built with.
    public let macAddress: MACAddress
    /// The card's PCI function: config space, BAR and DMA gates, INTx pin, frame port and cable.
    public let function: PCIFunction
    /// The function's frame port.
    public let port: FramePort
    /// The function's configuration space.
    public let config: PCIConfigSpace
    /// The function's guest memory behind the bus-master gate.
    package let dma: BusMaster
    /// The function's INTx pin.
    package let pin: INTxPin
    /// The link state (cable connected and carrier) the card last followed.
    @exclusivity(unchecked) @usableFromInline package final var lastLinkUp = false

    /// A card with `macAddress` on `function`.
    package init(macAddress: MACAddress, function: PCIFunction) {
        self.macAddress = macAddress
        self.function = function
        port = function.port
        config = function.config
        dma = function.dma
        pin = function.pin
    }

    /// The link state if it changed since the card last followed it, now followed; `nil` if it did not change.
    @inlinable
    package final func linkChange() -> Bool? {
        let up = function.linkUp
        guard up != lastLinkUp else { return nil }
        lastLinkUp = up
        return up
    }

    /// The function's own counters: DMA faults, and frames the port dropped on the way in (queue full) and out
    /// (nothing attached).
    public final var functionCounters: [Counter] {
        [
            Counter("dma_faults", dma.faults),
            Counter("port_queue_dropped", port.inboundDropped),
            Counter("port_unattached_dropped", port.transmittedUnattached),
        ]
    }
}
