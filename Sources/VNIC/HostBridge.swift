import CVNIC
import NICCore

/// The host's callbacks, checked once at creation.
struct HostCallbacks: @unchecked Sendable {
    let opaque: UnsafeMutableRawPointer?
    let dmaRead: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutableRawPointer?, Int) -> Int32
    let dmaWrite: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeRawPointer?, Int) -> Int32
    let setIRQ: (@convention(c) (UnsafeMutableRawPointer?, Int32) -> Void)?
    let msixSend: (@convention(c) (UnsafeMutableRawPointer?, UInt32, UInt64, UInt32) -> Void)?
    let clockNanoseconds: @convention(c) (UnsafeMutableRawPointer?) -> UInt64
    let timerSet: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Void
    let frameOut: (@convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Void)?
    let notify: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?

    /// Copies `ops`, naming the first thing wrong with it.
    init(_ ops: vnic_host_ops) throws(BridgeError) {
        guard Int(ops.size) >= MemoryLayout<vnic_host_ops>.size else {
            throw BridgeError(
                .badHostOps,
                "vnic_host_ops.size is \(ops.size), expected \(MemoryLayout<vnic_host_ops>.size) (sizeof(vnic_host_ops))"
            )
        }
        guard let dmaRead = ops.dma_read else { throw BridgeError(.badHostOps, "vnic_host_ops.dma_read is NULL") }
        guard let dmaWrite = ops.dma_write else { throw BridgeError(.badHostOps, "vnic_host_ops.dma_write is NULL") }
        guard let clock = ops.clock_ns else { throw BridgeError(.badHostOps, "vnic_host_ops.clock_ns is NULL") }
        guard let timerSet = ops.timer_set else { throw BridgeError(.badHostOps, "vnic_host_ops.timer_set is NULL") }
        opaque = ops.opaque
        self.dmaRead = dmaRead
        self.dmaWrite = dmaWrite
        setIRQ = ops.set_irq
        msixSend = ops.msix_send
        clockNanoseconds = clock
        self.timerSet = timerSet
        frameOut = ops.frame_out
        notify = ops.notify
    }
}

/// A failed call: the status it returns and the message `vnic_card_last_error` shows.
struct BridgeError: Error {
    var status: vnic_status
    var message: String

    init(_ status: vnic_status, _ message: String) {
        self.status = status
        self.message = message
    }
}

extension vnic_status {
    static let badHostOps = VNIC_ERR_BAD_HOST_OPS
}

/// Guest memory through the host's DMA callbacks. The card's own ``BusMaster`` gate runs before these.
final class HostMemory: GuestMemory {
    let host: HostCallbacks
    /// Sees every successful access (session recording).
    var observer: ((GuestAddress, UnsafeRawBufferPointer, Bool) -> Void)?

    init(host: HostCallbacks) { self.host = host }

    func read(at address: GuestAddress, into buffer: UnsafeMutableRawBufferPointer) throws(DMAError) {
        guard !buffer.isEmpty else { return }
        guard host.dmaRead(host.opaque, address.rawValue, buffer.baseAddress, buffer.count) == 0 else {
            throw DMAError(.outsideRAM, address: address, length: buffer.count, isWrite: false)
        }
        observer?(address, UnsafeRawBufferPointer(buffer), false)
    }

    func write(at address: GuestAddress, from buffer: UnsafeRawBufferPointer) throws(DMAError) {
        guard !buffer.isEmpty else { return }
        guard host.dmaWrite(host.opaque, address.rawValue, buffer.baseAddress, buffer.count) == 0 else {
            throw DMAError(.outsideRAM, address: address, length: buffer.count, isWrite: true)
        }
        observer?(address, buffer, true)
    }
}

/// The card's INTx pin, wired to the host's `set_irq`.
final class HostInterruptLine: InterruptLine {
    let host: HostCallbacks
    private(set) var level = false
    var observer: ((Bool) -> Void)?

    init(host: HostCallbacks) { self.host = host }

    func setLevel(_ asserted: Bool) {
        level = asserted
        host.setIRQ?(host.opaque, asserted ? 1 : 0)
        observer?(asserted)
    }
}

/// MSI-X messages, sent through the host's `msix_send`.
final class HostMSIX: MSIXSink {
    let host: HostCallbacks
    var observer: ((Int) -> Void)?

    init(host: HostCallbacks) { self.host = host }

    func signal(vector: Int, address: UInt64, data: UInt32) {
        host.msixSend?(host.opaque, UInt32(truncatingIfNeeded: vector), address, data)
        observer?(vector)
    }
}

/// The host's own network backend: frames the card transmits go to `frame_out`, and the host hands frames in with
/// `vnic_card_receive`. Carrier is up while attached.
final class HostBackendAttachment: NetworkAttachment, @unchecked Sendable {
    let host: HostCallbacks
    private let frameOut: @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Void

    init?(host: HostCallbacks) {
        guard let frameOut = host.frameOut else { return nil }
        self.host = host
        self.frameOut = frameOut
    }

    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        frameOut(host.opaque, frame.baseAddress, frame.count)
    }

    func didAttach(_ port: FramePort) { port.setCarrier(true) }
}
