import NICCore

/// Guest RAM from address 0 for tests: a plain byte array that refuses anything outside it, and counts accesses.
public final class RAM: GuestMemory {
    public var bytes: [UInt8]
    public private(set) var reads = 0
    public private(set) var writes = 0

    public init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    private func range(_ address: GuestAddress, _ count: Int, isWrite: Bool) throws(DMAError) -> Range<Int> {
        let (end, overflow) = address.rawValue.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= UInt64(bytes.count) else {
            throw DMAError(.outsideRAM, address: address, length: count, isWrite: isWrite)
        }
        return Int(address.rawValue)..<Int(end)
    }

    public func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError) {
        let range = try range(address, buffer.count, isWrite: false)
        reads += 1
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[range]))
        }
    }

    public func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError) {
        let range = try range(address, buffer.count, isWrite: true)
        writes += 1
        bytes.replaceSubrange(range, with: buffer)
    }
}

/// An INTx line that records every level it is driven to.
public final class RecordingLine: InterruptLine {
    public private(set) var levels: [Bool] = []
    public init() {}
    public func setLevel(_ asserted: Bool) { levels.append(asserted) }
}
