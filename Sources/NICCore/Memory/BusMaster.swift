/// A device's DMA path into guest memory: the PCI bus-master gate, a check that keeps DMA out of the device's own
/// BARs, and the host's ``GuestMemory`` behind them.
///
/// Devices do all their DMA through this gate, so "DMA goes to RAM only" holds in one place.
///
/// Like the devices, the gate is used from one thread at a time; its hot state opts out of dynamic exclusivity
/// checks (`@exclusivity(unchecked)`), which otherwise cost more than the copy itself.
public final class BusMaster: GuestMemory {
    /// The host's guest memory.
    public let memory: any GuestMemory
    private let config: PCIConfigSpace
    @exclusivity(unchecked) private var cachedGeneration: UInt64 = .max
    @exclusivity(unchecked) private var windows: [Range<UInt64>] = []
    @exclusivity(unchecked) private var enabled = false

    /// DMA accesses refused so far, by this gate or by the memory behind it.
    @exclusivity(unchecked) public private(set) var faults: UInt64 = 0
    /// The most recent refused access.
    @exclusivity(unchecked) public private(set) var lastFault: DMAError?

    /// Creates the gate for a device whose config space is `config`.
    public init(memory: any GuestMemory, config: PCIConfigSpace) {
        self.memory = memory
        self.config = config
    }

    /// Re-reads the bus-master bit and the BAR windows if config space changed since they were last read.
    /// ``PCIFunction`` calls it after every config write and reset, on the configuration thread, so the data path (virtio
    /// queue pairs serviced in parallel among them) finds the cache current and only reads it.
    @inline(__always)
    package func refresh() {
        let generation = config.generation
        guard cachedGeneration != generation else { return }
        enabled = config.command.contains(.busMaster)
        windows = config.memoryWindows
        cachedGeneration = generation
    }

    @inline(__always)
    private func check(_ address: GuestAddress, _ count: Int, isWrite: Bool) throws(DMAError) {
        refresh()
        guard enabled else {
            throw fault(DMAError(.busMasterDisabled, address: address, length: count, isWrite: isWrite))
        }
        let (end, overflow) = address.rawValue.addingReportingOverflow(UInt64(count))
        guard !overflow else {
            throw fault(DMAError(.wrapsAddressSpace, address: address, length: count, isWrite: isWrite))
        }
        for window in windows where address.rawValue < window.upperBound && end > window.lowerBound {
            throw fault(DMAError(.insideDeviceBAR, address: address, length: count, isWrite: isWrite))
        }
    }

    private func fault(_ error: DMAError) -> DMAError {
        faults &+= 1
        lastFault = error
        return error
    }

    public func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError) {
        try check(address, buffer.count, isWrite: false)
        do throws(DMAError) { try memory.read(at: address, into: buffer) } catch { throw fault(error) }
    }

    public func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError) {
        try check(address, buffer.count, isWrite: true)
        do throws(DMAError) { try memory.write(at: address, from: buffer) } catch { throw fault(error) }
    }

    public func write(
        at address: GuestAddress, from first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer
    ) throws(DMAError) {
        try check(address, first.count + second.count, isWrite: true)
        do throws(DMAError) { try memory.write(at: address, from: first, then: second) } catch { throw fault(error) }
    }
}
