import Foundation
import NICCore

/// Guest RAM from address 0 for tests: a plain byte array that refuses anything outside it.
final class RAM: GuestMemory {
    var bytes: [UInt8]
    private(set) var reads = 0
    private(set) var writes = 0

    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    private func range(_ address: GuestAddress, _ count: Int, isWrite: Bool) throws(DMAError) -> Range<Int> {
        let (end, overflow) = address.rawValue.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= UInt64(bytes.count) else {
            throw DMAError(.outsideRAM, address: address, length: count, isWrite: isWrite)
        }
        return Int(address.rawValue)..<Int(end)
    }

    func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError) {
        let range = try range(address, buffer.count, isWrite: false)
        reads += 1
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[range]))
        }
    }

    func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError) {
        let range = try range(address, buffer.count, isWrite: true)
        writes += 1
        bytes.replaceSubrange(range, with: buffer)
    }
}

/// An INTx line that records every level it is driven to.
final class RecordingLine: InterruptLine {
    private(set) var levels: [Bool] = []
    func setLevel(_ asserted: Bool) { levels.append(asserted) }
}

/// A path for a scratch file in the temporary directory, unique per call.
func temporaryPath(_ suffix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vnic-test-\(UUID().uuidString)-\(suffix)").path
}

/// The shared pcap fixtures directory (`../shared/fixtures/pcaps` from the repository root), if it exists.
func sharedPcapFixtures(filePath: String = #filePath) -> URL? {
    let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let directory = root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/pcaps")
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
    else { return nil }
    return directory
}

/// Byte helpers for hand-built files.
func bigEndian32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
func bigEndian16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)] }
func littleEndian32(_ value: UInt32) -> [UInt8] { bigEndian32(value).reversed() }
func littleEndian16(_ value: UInt16) -> [UInt8] { bigEndian16(value).reversed() }
