import CVNIC
import NICCards
import NICCore
import NICTrace
import NetBackend

/// The object behind a `vnic_card *`: one card, the host's callbacks, a clock that follows the host's, and the
/// optional capture and recording. Every method runs on the card's thread.
final class CardSession {
    /// How far the host clock must move before an access advances the card's clock: the card's clock only moves at
    /// event boundaries, so a recorded session replays exactly, and a smaller step would only make traces longer.
    static let clockQuantum: Duration = .microseconds(20)

    let model: CardModel
    let options: CardOptions
    let card: any NetworkCard
    let host: HostCallbacks
    let memory: HostMemory
    let interruptLine: HostInterruptLine
    let msix: HostMSIX
    let clock = ManualClock()
    /// The host time (ns) that the card's clock calls zero.
    private let origin: UInt64
    private var requestedDeadline = noDeadline
    private var capture: PacketCapture?
    private(set) var recorder: SessionRecorder?
    /// Whether any access has happened (recording must start before the first).
    private var started = false
    /// Whether an event is running: a host callback (frame_out, say) can call back into the card before it returns.
    private(set) var busy = false
    private let errorBuffer: UnsafeMutablePointer<CChar>
    static let errorBufferSize = 512

    init(
        model: CardModel, macAddress: MACAddress, options: CardOptions = CardOptions(), host: HostCallbacks
    ) throws(BridgeError) {
        self.model = model
        self.options = options
        self.host = host
        memory = HostMemory(host: host)
        interruptLine = HostInterruptLine(host: host)
        msix = HostMSIX(host: host)
        origin = host.clockNanoseconds(host.opaque)
        errorBuffer = .allocate(capacity: Self.errorBufferSize)
        errorBuffer.initialize(repeating: 0, count: Self.errorBufferSize)
        do throws(CardError) {
            card = try model.make(
                macAddress: macAddress,
                environment: CardEnvironment(memory: memory, interruptLine: interruptLine, msix: msix, clock: clock),
                options: options)
        } catch {
            errorBuffer.deallocate()
            throw BridgeError(
                error.kind == .unknownModel ? VNIC_ERR_UNKNOWN_MODEL : VNIC_ERR_BAD_SETTINGS, error.message)
        }
        if let backend = HostBackendAttachment(host: host) {
            card.port.attach(backend)
        } else {
            card.port.attach(NullAttachment())
        }
        if let notify = host.notify {
            let callbacks = host
            card.port.onWork = { notify(callbacks.opaque) }
        }
        card.service()
    }

    deinit {
        card.port.onWork = nil
        try? stopRecording()
        capture?.close()
        card.port.detach()
        errorBuffer.deallocate()
    }

    // MARK: Errors

    /// The last error's message as a C string.
    var lastError: UnsafePointer<CChar> { UnsafePointer(errorBuffer) }

    /// Stores `message` as the last error (truncated to the buffer) and returns `status`.
    func fail(_ status: vnic_status, _ message: String) -> Int32 {
        var bytes = Array(message.utf8.prefix(Self.errorBufferSize - 1))
        bytes.append(0)
        bytes.withUnsafeBytes { source in
            guard let base = source.baseAddress else { return }
            UnsafeMutableRawPointer(errorBuffer).copyMemory(from: base, byteCount: source.count)
        }
        return Int32(status.rawValue)
    }

    func fail(_ error: BridgeError) -> Int32 { fail(error.status, error.message) }

    // MARK: Events

    /// Runs one guest-visible event: the clock catches up with the host first (itself an event when it moves), then
    /// `body`; the recorder, if any, writes the event's lines, and the host's timer is re-armed.
    func event<T>(_ body: () -> T, recordedAs operation: (T) -> TraceOperation?) -> T {
        started = true
        busy = true
        defer { busy = false }
        synchroniseClock()
        recorder?.beginEvent()
        let result = body()
        recorder?.endEvent(operation(result))
        requestTimer()
        return result
    }

    /// An event whose trace line does not depend on its result.
    func event<T>(_ operation: TraceOperation?, _ body: () -> T) -> T {
        event(body, recordedAs: { _ in operation })
    }

    /// Advances the card's clock to the host's when the host has moved by a quantum or a timer is due.
    private func synchroniseClock() {
        let hostNow = host.clockNanoseconds(host.opaque)
        let elapsed = Duration.nanoseconds(Int64(clamping: hostNow >= origin ? hostNow - origin : 0))
        let delta = elapsed - clock.now
        guard delta > .zero else { return }
        let timerDue = clock.nextDeadline.map { $0 <= elapsed } ?? false
        guard timerDue || delta >= Self.clockQuantum else { return }
        recorder?.beginEvent()
        clock.advance(by: delta)
        card.service()
        recorder?.endEvent(.clock(nanoseconds: UInt64(max(0, delta.nanoseconds))))
    }

    /// Tells the host when the card next needs `vnic_card_run_timers`.
    private func requestTimer() {
        var deadline = noDeadline
        if let next = clock.nextDeadline {
            let (sum, overflow) = origin.addingReportingOverflow(UInt64(max(0, next.nanoseconds)))
            deadline = overflow ? noDeadline - 1 : sum
        }
        guard deadline != requestedDeadline else { return }
        requestedDeadline = deadline
        host.timerSet(host.opaque, deadline)
    }

    // MARK: Operations

    /// The host's timer fired: it has none pending now, so the next deadline is requested afresh.
    func runTimers() {
        requestedDeadline = noDeadline
        if busy { return }
        event(nil) {}
    }

    /// Drains the port; while busy, the running event drains it instead.
    func service() {
        if busy { return }
        event(nil) { card.service() }
    }

    /// A frame from the host's backend. A frame that arrives while the card is busy (QEMU's user network answers a
    /// transmitted frame from inside `frame_out`) waits in the port's queue; the running event drains it after the
    /// card finishes what it was doing, so the card never receives in the middle of its own transmit.
    func receive(_ frame: [UInt8]) -> Bool {
        if busy { return card.port.deliver(frame) }
        return event(nil) { () -> Bool in
            let accepted = card.port.deliver(frame)
            card.service()
            return accepted
        }
    }

    func setLink(_ up: Bool) {
        event(.link(up: up)) {
            card.cableConnected = up
            card.service()
        }
    }

    /// PCI reset. A fresh card is left alone; a recording ends first, because trace format v1 has no reset line.
    func reset() throws(BridgeError) {
        guard started else { return }
        try stopRecording(note: "recording stopped: PCI reset")
        event(nil) {
            card.reset()
            card.service()
        }
    }

    /// The BAR's address space as traces name it.
    func space(ofBAR bar: Int) -> BARSpace? {
        guard (0..<6).contains(bar), let layout = card.config.barLayouts[bar] else { return nil }
        return layout.isMemory ? .memory : .io
    }

    // MARK: Attachments, capture, recording

    func attach(_ settings: String) throws(BridgeError) {
        if settings == "host" {
            guard let backend = HostBackendAttachment(host: host) else {
                throw BridgeError(VNIC_ERR_BAD_SETTINGS, "attachment 'host' needs vnic_host_ops.frame_out")
            }
            card.port.attach(backend)
        } else {
            let attachment: any NetworkAttachment
            do throws(AttachmentSettingError) {
                attachment = try AttachmentSetting(parsing: settings).makeAttachment()
            } catch {
                throw BridgeError(VNIC_ERR_BAD_SETTINGS, error.description + " (or 'host')")
            }
            card.port.attach(attachment)
        }
        service()
    }

    func startCapture(path: String?) throws(BridgeError) {
        if let capture {
            card.port.removeTap(capture)
            capture.close()
            self.capture = nil
        }
        guard let path else { return }
        do throws(PcapError) {
            let capture = try PacketCapture(path: path)
            card.port.addTap(capture)
            self.capture = capture
        } catch {
            throw BridgeError(VNIC_ERR_IO, "capture to \(path): \(error)")
        }
    }

    var captureCounters: [Counter] { capture?.counters ?? [] }

    func startRecording(path: String) throws(BridgeError) {
        guard recorder == nil else { throw BridgeError(VNIC_ERR_BAD_STATE, "the card is already recording") }
        guard !started else {
            throw BridgeError(
                VNIC_ERR_BAD_STATE, "recording must start before the first access: replay starts from a fresh card")
        }
        let recorder: SessionRecorder
        do throws(SessionRecorder.Failure) {
            recorder = try SessionRecorder(
                path: path, model: model, macAddress: card.macAddress, options: options)
        } catch {
            throw BridgeError(VNIC_ERR_IO, error.message)
        }
        memory.observer = { [unowned recorder] address, bytes, isWrite in
            if isWrite {
                recorder.noteWrite(address.rawValue, bytes)
            } else {
                recorder.noteRead(address.rawValue, bytes)
            }
        }
        interruptLine.observer = { [unowned recorder] level in recorder.noteInterrupt(level) }
        msix.observer = { [unowned recorder] vector in recorder.noteMSIX(vector) }
        card.port.onDequeue = { [unowned recorder] frame in recorder.noteReceived(frame.bytes) }
        card.port.addTap(recorder)
        self.recorder = recorder
    }

    func stopRecording(note: String? = nil) throws(BridgeError) {
        guard let recorder else { return }
        if let note { recorder.comment(note) }
        memory.observer = nil
        interruptLine.observer = nil
        msix.observer = nil
        card.port.onDequeue = nil
        card.port.removeTap(recorder)
        self.recorder = nil
        do throws(SessionRecorder.Failure) { try recorder.finish() } catch {
            throw BridgeError(VNIC_ERR_IO, error.message)
        }
    }
}

/// `VNIC_NO_DEADLINE` as Swift sees it (the macro is not imported).
let noDeadline = UInt64.max
