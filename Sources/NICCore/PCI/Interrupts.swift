/// A level-triggered INTx line into the host's interrupt controller.
public protocol InterruptLine: AnyObject {
    /// Asserts (`true`) or deasserts the line.
    func setLevel(_ asserted: Bool)
}

/// Where a device sends MSI-X messages.
public protocol MSIXSink: AnyObject {
    /// Delivers the message programmed for `vector`: a 32-bit `data` write to `address`.
    func signal(vector: Int, address: UInt64, data: UInt32)
}

/// A device's INTx pin: forwards level changes only, honours the command register's interrupt-disable bit and keeps
/// the status register's interrupt bit current.
public final class INTxPin {
    private let line: (any InterruptLine)?
    private let config: PCIConfigSpace
    /// The device's internal interrupt state, before the interrupt-disable bit.
    @exclusivity(unchecked) public private(set) var requested = false
    /// The level last driven onto the line.
    @exclusivity(unchecked) public private(set) var asserted = false

    /// Creates the pin of a device with `config`, wired to `line` (or to nothing).
    public init(line: (any InterruptLine)?, config: PCIConfigSpace) {
        self.line = line
        self.config = config
    }

    /// Sets the device's interrupt request; the line follows unless INTx is disabled.
    public func set(_ level: Bool) {
        requested = level
        refresh()
    }

    /// Re-evaluates the line after a command-register write.
    public func refresh() {
        if requested { config.setStatus(.interruptStatus) } else { config.clearStatus(.interruptStatus) }
        let level = requested && !config.command.contains(.interruptDisable)
        guard level != asserted else { return }
        asserted = level
        line?.setLevel(level)
    }
}
