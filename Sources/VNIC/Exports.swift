// swift-format-ignore-file: AlwaysUseLowerCamelCase

// The exported functions keep the C names vnic.h declares.
import CVNIC
import NICCards
import NICCore
import NICTrace

// The C interface declared in vnic.h. Every function checks its arguments and returns a status; none traps.

private func session(_ card: OpaquePointer?) -> CardSession? {
    guard let card else { return nil }
    return Unmanaged<CardSession>.fromOpaque(UnsafeRawPointer(card)).takeUnretainedValue()
}

/// The card's session when it is free to take a call that changes it; a call from inside one of the host's
/// callbacks (re-entrant) is refused with `VNIC_ERR_BAD_STATE`.
private func idleSession(_ card: OpaquePointer?, _ what: String) -> (CardSession?, Int32) {
    guard let session = session(card) else { return (nil, status(VNIC_ERR_NULL_ARGUMENT)) }
    guard !session.busy else {
        return (nil, session.fail(VNIC_ERR_BAD_STATE, "\(what) called from inside a host callback of the same card"))
    }
    return (session, status(VNIC_OK))
}

private func status(_ value: vnic_status) -> Int32 { Int32(value.rawValue) }

/// Runs `body` on `session`: `VNIC_OK`, or the error's status with its message kept for `vnic_card_last_error`.
private func perform(_ session: CardSession, _ body: () throws(BridgeError) -> Void) -> Int32 {
    do throws(BridgeError) {
        try body()
        return status(VNIC_OK)
    } catch {
        return session.fail(error)
    }
}

private let nullCard = status(VNIC_ERR_NULL_ARGUMENT)

/// The card model a VirtualBox adapter type names (case-insensitive), if vnic implements it.
private func model(named name: UnsafePointer<CChar>) -> CardModel? {
    try? CardModel(named: String(cString: name))
}

private func isLegalConfigAccess(offset: UInt32, width: UInt32) -> Bool {
    (width == 1 || width == 2 || width == 4) && offset < UInt32(PCIConfigSpace.size)
        && UInt32(PCIConfigSpace.size) - offset >= width
}

// MARK: Library

@c @implementation
public func vnic_abi_version() -> UInt32 { UInt32(VNIC_ABI_VERSION) }

@c @implementation
public func vnic_status_string(_ code: Int32) -> UnsafePointer<CChar>? {
    let text: StaticString
    switch code {
    case status(VNIC_OK): text = "ok"
    case status(VNIC_ERR_NULL_ARGUMENT): text = "a required argument is NULL"
    case status(VNIC_ERR_UNKNOWN_MODEL): text = "unknown or unimplemented card type"
    case status(VNIC_ERR_BAD_MAC): text = "malformed MAC address"
    case status(VNIC_ERR_BAD_HOST_OPS): text = "incomplete vnic_host_ops"
    case status(VNIC_ERR_NO_SUCH_BAR): text = "no such BAR"
    case status(VNIC_ERR_OUT_OF_RANGE): text = "offset or width out of range"
    case status(VNIC_ERR_BAD_SETTINGS): text = "malformed attachment settings"
    case status(VNIC_ERR_IO): text = "file error"
    case status(VNIC_ERR_BUFFER_TOO_SMALL): text = "buffer too small"
    case status(VNIC_ERR_BAD_STATE): text = "not valid in the card's state"
    case status(VNIC_ERR_BAD_FRAME): text = "bad frame length"
    case status(VNIC_ERR_NO_SUCH_COUNTER): text = "no such counter"
    case status(VNIC_ERR_QUEUE_FULL): text = "inbound queue full"
    default: text = "unknown status"
    }
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation
public func vnic_model_supported(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name else { return 0 }
    return model(named: name) == nil ? 0 : 1
}

// MARK: Lifetime

@c @implementation
public func vnic_card_create(
    _ modelName: UnsafePointer<CChar>?, _ mac: UnsafePointer<CChar>?, _ ops: UnsafePointer<vnic_host_ops>?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    vnic_card_create_with(modelName, mac, nil, ops, out)
}

@c @implementation
public func vnic_card_create_with(
    _ modelName: UnsafePointer<CChar>?, _ mac: UnsafePointer<CChar>?, _ options: UnsafePointer<CChar>?,
    _ ops: UnsafePointer<vnic_host_ops>?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guard let modelName, let ops, let out else { return nullCard }
    out.pointee = nil
    guard let chosen = model(named: modelName) else { return status(VNIC_ERR_UNKNOWN_MODEL) }
    let cardOptions: CardOptions
    do throws(CardError) {
        cardOptions = try CardOptions(parsing: options.map { String(cString: $0) } ?? "", for: chosen)
    } catch {
        return status(VNIC_ERR_BAD_SETTINGS)
    }
    var address = MACAddress("52:54:00:12:34:56")!
    if let mac {
        guard let parsed = MACAddress(String(cString: mac)), !parsed.isMulticast else {
            return status(VNIC_ERR_BAD_MAC)
        }
        address = parsed
    }
    do throws(BridgeError) {
        let session = try CardSession(
            model: chosen, macAddress: address, options: cardOptions, host: try HostCallbacks(ops.pointee))
        out.pointee = OpaquePointer(Unmanaged.passRetained(session).toOpaque())
        return status(VNIC_OK)
    } catch {
        return status(error.status)
    }
}

@c @implementation
public func vnic_card_destroy(_ card: OpaquePointer?) {
    guard let card, session(card)?.busy == false else { return }
    Unmanaged<CardSession>.fromOpaque(UnsafeRawPointer(card)).release()
}

@c @implementation
public func vnic_card_last_error(_ card: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let session = session(card) else { return nil }
    return session.lastError
}

// MARK: PCI

@c @implementation
public func vnic_card_config_read(
    _ card: OpaquePointer?, _ offset: UInt32, _ width: UInt32, _ value: UnsafeMutablePointer<UInt32>?
) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_config_read")
    guard let session = idle else { return refusal }
    guard let value else { return nullCard }
    guard isLegalConfigAccess(offset: offset, width: width) else {
        return session.fail(VNIC_ERR_OUT_OF_RANGE, "config read of \(width) bytes at \(offset)")
    }
    value.pointee = session.event({ session.card.configRead(offset: Int(offset), width: Int(width)) }) { read in
        .configRead(offset: Int(offset), width: Int(width), expect: .equals(UInt64(read)))
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_config_write(_ card: OpaquePointer?, _ offset: UInt32, _ width: UInt32, _ value: UInt32) -> Int32
{
    let (idle, refusal) = idleSession(card, "vnic_card_config_write")
    guard let session = idle else { return refusal }
    guard isLegalConfigAccess(offset: offset, width: width) else {
        return session.fail(VNIC_ERR_OUT_OF_RANGE, "config write of \(width) bytes at \(offset)")
    }
    session.event(.configWrite(offset: Int(offset), width: Int(width), value: UInt64(value))) {
        session.card.configWrite(offset: Int(offset), width: Int(width), value: value)
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_config_snapshot(_ card: OpaquePointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int)
    -> Int32
{
    guard let session = session(card), let buffer else { return nullCard }
    guard capacity >= PCIConfigSpace.size else {
        return session.fail(
            VNIC_ERR_BUFFER_TOO_SMALL, "config space is \(PCIConfigSpace.size) bytes, the buffer \(capacity)")
    }
    for offset in stride(from: 0, to: PCIConfigSpace.size, by: 4) {
        let value = session.card.config.read(offset: offset, width: 4)
        for byte in 0..<4 { buffer[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(byte))) }
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_bar_info(
    _ card: OpaquePointer?, _ bar: UInt32, _ kind: UnsafeMutablePointer<vnic_bar_kind>?,
    _ size: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    guard let session = session(card), let kind, let size else { return nullCard }
    guard bar < 6 else { return session.fail(VNIC_ERR_NO_SUCH_BAR, "BAR \(bar): BARs are numbered 0 to 5") }
    kind.pointee = VNIC_BAR_NONE
    size.pointee = 0
    guard let layout = session.card.config.barLayouts[Int(bar)] else { return status(VNIC_OK) }
    switch layout.kind {
    case .io: kind.pointee = VNIC_BAR_IO
    case .memory32: kind.pointee = VNIC_BAR_MEMORY32
    case .memory64: kind.pointee = VNIC_BAR_MEMORY64
    }
    size.pointee = layout.size
    return status(VNIC_OK)
}

/// Checks a BAR access's arguments: the BAR exists, the width is legal and the bytes lie inside it.
private func checkBARAccess(_ session: CardSession, bar: UInt32, offset: UInt64, width: UInt32) -> (
    space: BARSpace?, error: Int32?
) {
    guard bar < 6, let space = session.space(ofBAR: Int(bar)) else {
        return (nil, session.fail(VNIC_ERR_NO_SUCH_BAR, "\(session.model.rawValue) has no BAR \(bar)"))
    }
    let size = session.card.config.barSize(Int(bar))
    guard width == 1 || width == 2 || width == 4 || width == 8, offset < size, UInt64(width) <= size - offset else {
        return (
            nil,
            session.fail(
                VNIC_ERR_OUT_OF_RANGE, "access of \(width) bytes at \(Hex.number(offset)) of BAR \(bar) (size \(size))")
        )
    }
    return (space, nil)
}

@c @implementation
public func vnic_card_bar_read(
    _ card: OpaquePointer?, _ bar: UInt32, _ offset: UInt64, _ width: UInt32, _ value: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_bar_read")
    guard let session = idle else { return refusal }
    guard let value else { return nullCard }
    let check = checkBARAccess(session, bar: bar, offset: offset, width: width)
    guard let space = check.space else { return check.error ?? nullCard }
    value.pointee = session.event(
        { () -> UInt64 in
            let read = session.card.barRead(Int(bar), offset: offset, width: Int(width))
            session.card.service()
            return read
        },
        recordedAs: { read in .barRead(space, bar: Int(bar), offset: offset, width: Int(width), expect: .equals(read)) }
    )
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_bar_write(
    _ card: OpaquePointer?, _ bar: UInt32, _ offset: UInt64, _ width: UInt32, _ value: UInt64
) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_bar_write")
    guard let session = idle else { return refusal }
    let check = checkBARAccess(session, bar: bar, offset: offset, width: width)
    guard let space = check.space else { return check.error ?? nullCard }
    session.event(.barWrite(space, bar: Int(bar), offset: offset, width: Int(width), value: value)) {
        session.card.barWrite(Int(bar), offset: offset, width: Int(width), value: value)
        session.card.service()
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_run_timers(_ card: OpaquePointer?) -> Int32 {
    guard let session = session(card) else { return nullCard }
    session.runTimers()
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_service(_ card: OpaquePointer?) -> Int32 {
    guard let session = session(card) else { return nullCard }
    session.service()
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_reset(_ card: OpaquePointer?) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_reset")
    guard let session = idle else { return refusal }
    return perform(session) { () throws(BridgeError) in try session.reset() }
}

// MARK: Network

@c @implementation
public func vnic_card_can_receive(_ card: OpaquePointer?) -> Int32 {
    guard let session = session(card) else { return 0 }
    return session.card.port.queuedFrames < FramePort.defaultQueueCapacity ? 1 : 0
}

/// The longest frame the C interface accepts: a 64 KiB segmentation super-frame and its headers.
private let maximumFrameLength = 65_536 + 64

@c @implementation
public func vnic_card_receive(_ card: OpaquePointer?, _ frame: UnsafeRawPointer?, _ length: Int) -> Int32 {
    guard let session = session(card), let frame else { return nullCard }
    guard length >= 14, length <= maximumFrameLength else {
        return session.fail(VNIC_ERR_BAD_FRAME, "frame of \(length) bytes (14 to \(maximumFrameLength) accepted)")
    }
    let bytes = Array(UnsafeRawBufferPointer(start: frame, count: length))
    guard session.receive(bytes) else {
        return session.fail(VNIC_ERR_QUEUE_FULL, "the card's inbound queue is full; the frame was dropped")
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_set_link(_ card: OpaquePointer?, _ up: Int32) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_set_link")
    guard let session = idle else { return refusal }
    session.setLink(up != 0)
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_link_up(_ card: OpaquePointer?, _ up: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let session = session(card), let up else { return nullCard }
    up.pointee = session.card.linkUp ? 1 : 0
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_attach(_ card: OpaquePointer?, _ settings: UnsafePointer<CChar>?) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_attach")
    guard let session = idle else { return refusal }
    guard let settings else { return nullCard }
    return perform(session) { () throws(BridgeError) in try session.attach(String(cString: settings)) }
}

@c @implementation
public func vnic_card_capture(_ card: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guard let session = session(card) else { return nullCard }
    let path = path.map { String(cString: $0) }
    return perform(session) { () throws(BridgeError) in try session.startCapture(path: path) }
}

// MARK: Counters

private func allCounters(_ session: CardSession) -> [Counter] {
    session.card.counters + session.captureCounters
}

@c @implementation
public func vnic_card_counters(
    _ card: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
    _ needed: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let session = session(card) else { return nullCard }
    var text = Array(allCounters(session).map { "\($0.name)=\($0.value)\n" }.joined().utf8)
    text.append(0)
    needed?.pointee = text.count
    guard let buffer, capacity >= text.count else {
        return session.fail(VNIC_ERR_BUFFER_TOO_SMALL, "counters need \(text.count) bytes, the buffer has \(capacity)")
    }
    text.withUnsafeBytes { source in
        guard let base = source.baseAddress else { return }
        UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: source.count)
    }
    return status(VNIC_OK)
}

@c @implementation
public func vnic_card_counter(
    _ card: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    guard let session = session(card), let name, let value else { return nullCard }
    let wanted = String(cString: name)
    guard let counter = allCounters(session).first(where: { $0.name == wanted }) else {
        return session.fail(VNIC_ERR_NO_SUCH_COUNTER, "no counter named '\(wanted)'")
    }
    value.pointee = counter.value
    return status(VNIC_OK)
}

// MARK: Recording

@c @implementation
public func vnic_card_record(_ card: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_record")
    guard let session = idle else { return refusal }
    guard let path else { return nullCard }
    return perform(session) { () throws(BridgeError) in try session.startRecording(path: String(cString: path)) }
}

@c @implementation
public func vnic_card_record_stop(_ card: OpaquePointer?) -> Int32 {
    let (idle, refusal) = idleSession(card, "vnic_card_record_stop")
    guard let session = idle else { return refusal }
    return perform(session) { () throws(BridgeError) in try session.stopRecording() }
}
