// The libFuzzer entry point for the host-facing attachments' parsers of untrusted input. Build it with
// Scripts/fuzz.sh (FUZZ_TARGET=FuzzAttachments); a plain `swift build` links an empty program.
//
// The first byte of an input picks what the rest is:
// - 0 to 2: datagrams (each a little-endian UInt16 length and that many bytes) arriving on the socket of a UDP tunnel
//   (0), a VXLAN segment with VNI 42 (1) or a VDE port (2), through the attachments' own receive path into a card's
//   port. A socket pair stands in for the network, so nothing leaves the process.
// - 3: a VDE switch's reply (the `sockaddr_un` naming its data socket) and the data socket path in it.
// - 4: an attachment settings string (`udptunnel:...`, `vde:...`, `vxlan:...`, ...), parsed but not opened.
import Glibc
import NICCore
import NetBackend

/// The most datagrams one input sends, so a run stays short.
let maximumDatagrams = 128

/// The datagrams an input encodes.
func datagrams(of input: ArraySlice<UInt8>) -> [[UInt8]] {
    var result: [[UInt8]] = []
    var offset = input.startIndex
    while offset + 2 <= input.endIndex, result.count < maximumDatagrams {
        let length = Int(input[offset]) | Int(input[offset + 1]) << 8
        offset += 2
        let end = min(input.endIndex, offset + length)
        result.append(Array(input[offset..<end]))
        offset = end
    }
    return result
}

/// Sends each datagram into a socket pair and lets `frames` take it as its attachment would, into a port.
func receive(_ input: ArraySlice<UInt8>, frames: DatagramFrames, header: (UnsafeRawBufferPointer) -> Int?) {
    var pair: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0 else { return }
    defer { close(pair[1]) }
    frames.replaceDescriptor(with: pair[0])
    defer { close(frames.replaceDescriptor(with: -1)) }
    let port = FramePort(queueCapacity: 16)
    frames.attach(port)
    defer { frames.detach(port) }
    for datagram in datagrams(of: input) {
        _ = datagram.withUnsafeBytes { send(pair[1], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        _ = frames.receive(limit: 2, accept: { _ in true }, header: header)
        while port.nextInbound() != nil {}
    }
}

func runOne(_ input: [UInt8]) {
    guard let selector = input.first else { return }
    let body = input.dropFirst()
    switch selector % 5 {
    case 0:
        receive(body, frames: DatagramFrames(counterPrefix: "udptunnel", maximumFrameLength: 65_507)) { _ in 0 }
    case 1:
        let frames = DatagramFrames(counterPrefix: "vxlan", maximumFrameLength: 1468, headerRoom: 8)
        receive(body, frames: frames) { VXLANAttachment.frameOffset(in: $0, vni: 42) }
    case 2:
        receive(body, frames: DatagramFrames(counterPrefix: "vde", maximumFrameLength: 1518)) { _ in 0 }
    case 3:
        if let path = UnixSocketAddress.path(in: Array(body)) { _ = VDEConnection.port(inDataPath: path) }
        _ = VDEConnection.port(inDataPath: String(decoding: body, as: UTF8.self))
    default:
        _ = try? AttachmentSetting(parsing: String(decoding: body, as: UTF8.self))
    }
}

// swift-format-ignore: AlwaysUseLowerCamelCase
@c(LLVMFuzzerTestOneInput)
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    runOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
