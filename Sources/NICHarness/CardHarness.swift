import NICCards
import NICCore
import NICTrace

/// One card in a test bench: guest RAM, a manual clock, recorded interrupts, and (by default) an attachment that keeps
/// every transmitted frame. The harness plays the guest: every access it makes can be recorded as a trace line, so a
/// driver script run through it becomes a fixture.
public final class CardHarness {
    public let model: CardModel
    /// How the card was built beyond its model (queue pairs, MTU).
    public let options: CardOptions
    public let card: any NetworkCard
    public let ram: GuestRAM
    public let clock: ManualClock
    public let interruptLine: RecordingInterruptLine
    public let msix: RecordingMSIX
    /// Keeps transmitted frames while the card is attached to it (the default).
    public let transmitted: TransmitRecorder
    /// When set, every operation is appended to it as a trace line.
    public var recorder: TraceRecorder?

    /// Builds a card of `model` with `ramSize` bytes of guest RAM, attached to a ``TransmitRecorder``.
    public init(
        model: CardModel, macAddress: MACAddress = MACAddress("52:54:00:12:34:56")!, ramSize: Int = 16 << 20,
        clock: ManualClock = ManualClock(), options: CardOptions = CardOptions()
    ) throws(HarnessError) {
        self.model = model
        self.options = options
        ram = try GuestRAM(size: ramSize)
        self.clock = clock
        interruptLine = RecordingInterruptLine()
        msix = RecordingMSIX()
        let environment = CardEnvironment(memory: ram, interruptLine: interruptLine, msix: msix, clock: clock)
        do throws(CardError) {
            card = try model.make(macAddress: macAddress, environment: environment, options: options)
        } catch { throw HarnessError(error.message) }
        transmitted = TransmitRecorder()
        card.port.attach(transmitted)
        card.service()
    }

    private func record(_ operation: TraceOperation, _ comment: String? = nil) {
        recorder?.append(operation, comment: comment)
    }

    // MARK: PCI

    /// Reads config space (recorded with the value read).
    @discardableResult
    public func configRead(_ offset: Int, width: Int, comment: String? = nil) -> UInt32 {
        let value = card.configRead(offset: offset, width: width)
        record(.configRead(offset: offset, width: width, expect: .equals(UInt64(value))), comment)
        return value
    }

    /// Writes config space.
    public func configWrite(_ offset: Int, width: Int, value: UInt32, comment: String? = nil) {
        record(.configWrite(offset: offset, width: width, value: UInt64(value)), comment)
        card.configWrite(offset: offset, width: width, value: value)
    }

    /// The address space BAR `bar` decodes, or `nil` if the card has no such BAR.
    public func space(ofBAR bar: Int) -> BARSpace? {
        guard (0..<6).contains(bar), let layout = card.config.barLayouts[bar] else { return nil }
        return layout.isMemory ? .memory : .io
    }

    /// Reads a BAR register (recorded with the value read).
    @discardableResult
    public func read(bar: Int, offset: UInt64, width: Int, comment: String? = nil) -> UInt64 {
        let value = card.barRead(bar, offset: offset, width: width)
        record(
            .barRead(space(ofBAR: bar) ?? .memory, bar: bar, offset: offset, width: width, expect: .equals(value)),
            comment)
        return value
    }

    /// Writes a BAR register.
    public func write(bar: Int, offset: UInt64, width: Int, value: UInt64, comment: String? = nil) {
        record(.barWrite(space(ofBAR: bar) ?? .memory, bar: bar, offset: offset, width: width, value: value), comment)
        card.barWrite(bar, offset: offset, width: width, value: value)
    }

    // MARK: Guest memory

    /// Stores bytes in guest RAM as the guest.
    public func store(_ bytes: [UInt8], at address: UInt64, comment: String? = nil) throws(HarnessError) {
        record(.memoryWrite(address: address, bytes: bytes), comment)
        try ram.store(bytes, at: address)
    }

    /// Fills guest RAM as the guest.
    public func fill(_ byte: UInt8, count: Int, at address: UInt64) throws(HarnessError) {
        record(.memoryFill(address: address, count: count, byte: byte))
        try ram.fill(byte, count: count, at: address)
    }

    /// Loads bytes from guest RAM as the guest (recorded as an expectation of what was read).
    public func load(at address: UInt64, count: Int, comment: String? = nil) throws(HarnessError) -> [UInt8] {
        let bytes = try ram.load(at: address, count: count)
        record(.memoryExpect(address: address, bytes: bytes), comment)
        return bytes
    }

    // MARK: Network

    /// A frame arrives from the attachment; the card handles it at once.
    public func receive(_ frame: [UInt8], comment: String? = nil) {
        record(.receive(frame), comment)
        card.port.deliver(frame)
        card.service()
    }

    /// The next frame the card transmitted, in order (recorded as an expectation).
    public func nextTransmitted(comment: String? = nil) -> [UInt8]? {
        let frame = transmitted.next()
        if let frame { record(.transmitExpect(frame), comment) }
        return frame
    }

    /// Frames transmitted so far (recorded as an expectation).
    public func transmittedCount() -> Int {
        let count = transmitted.count
        record(.transmitCount(count))
        return count
    }

    /// The INTx level now (recorded as an expectation).
    public func interruptLevel(comment: String? = nil) -> Bool {
        let level = interruptLine.level
        record(.interrupt(level), comment)
        return level
    }

    /// MSI-X messages on `vector` since the last look (recorded as an expectation).
    public func msixMessages(vector: Int) -> Int {
        let count = msix.take(vector: vector)
        record(.msix(vector: vector, count: count))
        return count
    }

    /// Plugs or unplugs the cable.
    public func setLink(up: Bool) {
        record(.link(up: up))
        card.cableConnected = up
        card.service()
    }

    /// Advances the manual clock, firing due timers.
    public func advance(nanoseconds: UInt64) {
        record(.clock(nanoseconds: nanoseconds))
        clock.advance(by: .nanoseconds(Int64(clamping: nanoseconds)))
        card.service()
    }
}
