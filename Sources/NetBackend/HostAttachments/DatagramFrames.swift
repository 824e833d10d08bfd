import CNetShims
import Glibc
import NICCore
import Synchronization

/// What an attachment carrying one Ethernet frame per datagram keeps (the UDP tunnel and VDE do): the socket, the
/// port it serves, its link state, and a counter for every frame in and out and every reason one is dropped.
///
/// Frames go out on the card's thread (``send(_:to:)``), under the lock that also guards the descriptor, so a frame
/// is never sent on a descriptor that was closed (and perhaps reused). The attachment's event loop thread reads with
/// ``receive(limit:accept:)``. Nothing here blocks.
package final class DatagramFrames: @unchecked Sendable {
    /// The longest frame carried either way (no FCS).
    let maximumFrameLength: Int
    /// The most bytes of encapsulation ahead of a frame in a datagram.
    let headerRoom: Int
    private let state = Mutex<State>(State())
    /// Loop-thread only: one datagram, with a byte to spare to tell an oversized one.
    private var scratch: [UInt8]

    private struct State {
        var descriptor: Int32 = -1
        weak var port: FramePort?
        var linkUp = false
    }

    let framesIn: HostLinkCounter
    let bytesIn: HostLinkCounter
    let framesOut: HostLinkCounter
    let bytesOut: HostLinkCounter
    let shortIn: HostLinkCounter
    let oversizeIn: HostLinkCounter
    let strangers: HostLinkCounter
    let detached: HostLinkCounter
    let queueFull: HostLinkCounter
    let oversizeOut: HostLinkCounter
    let noSocket: HostLinkCounter
    let sendBusy: HostLinkCounter
    let sendErrors: HostLinkCounter
    let receiveErrors: HostLinkCounter
    let badHeaders: HostLinkCounter

    /// Counters named `PREFIX_...` (`udptunnel`, `vde`); datagrams carry frames up to `maximumFrameLength` behind up
    /// to `headerRoom` bytes of encapsulation.
    package init(counterPrefix prefix: String, maximumFrameLength: Int, headerRoom: Int = 0) {
        self.maximumFrameLength = maximumFrameLength
        self.headerRoom = headerRoom
        scratch = [UInt8](repeating: 0, count: headerRoom + maximumFrameLength + 1)
        func counter(_ name: String) -> HostLinkCounter { HostLinkCounter(prefix + "_" + name) }
        framesIn = counter("frames_in")
        bytesIn = counter("bytes_in")
        framesOut = counter("frames_out")
        bytesOut = counter("bytes_out")
        shortIn = counter("drop_short")
        oversizeIn = counter("drop_oversize_in")
        strangers = counter("drop_stranger")
        detached = counter("drop_detached")
        queueFull = counter("drop_queue_full")
        oversizeOut = counter("drop_oversize_out")
        noSocket = counter("drop_link_down")
        sendBusy = counter("drop_send_busy")
        sendErrors = counter("send_errors")
        receiveErrors = counter("receive_errors")
        badHeaders = counter("drop_bad_header")
    }

    /// Every counter, by name.
    package var counters: [Counter] {
        [
            framesIn, bytesIn, framesOut, bytesOut, shortIn, oversizeIn, strangers, detached, queueFull, oversizeOut,
            noSocket, sendBusy, sendErrors, receiveErrors, badHeaders,
        ].map { Counter($0.name, $0.current) }
    }

    // MARK: The socket and the link

    /// The socket frames go out on and come in from; -1 while there is none.
    var descriptor: Int32 { state.withLock { $0.descriptor } }

    /// Puts `descriptor` (or none, -1) in place and raises or drops the port's carrier with it; answers the descriptor
    /// it replaced, which the caller closes.
    @discardableResult
    package func replaceDescriptor(with descriptor: Int32) -> Int32 {
        let (old, port) = state.withLock { state -> (Int32, FramePort?) in
            let old = state.descriptor
            state.descriptor = descriptor
            state.linkUp = descriptor >= 0
            return (old, state.port)
        }
        port?.setCarrier(descriptor >= 0)
        return old
    }

    /// Whether the link is up (the port's carrier): there is a socket, and nothing else said otherwise.
    var isLinkUp: Bool { state.withLock { $0.linkUp } }

    /// Raises or drops the link (and the port's carrier) while the socket stays: an attachment whose link follows
    /// something else (the bridged interface's carrier) says so here.
    func setLink(_ up: Bool) {
        let port = state.withLock { state -> FramePort? in
            state.linkUp = up
            return state.port
        }
        port?.setCarrier(up)
    }

    package func attach(_ port: FramePort) {
        let up = state.withLock { state -> Bool in
            state.port = port
            return state.linkUp
        }
        port.setCarrier(up)
    }

    package func detach(_ port: FramePort) {
        state.withLock { state in if state.port === port { state.port = nil } }
    }

    // MARK: Frames

    /// Sends `frame` as one datagram, behind `header` (an encapsulation's, or none): to `destination`, or on a
    /// connected socket when that is `nil`.
    func send(_ frame: UnsafeRawBufferPointer, header: [UInt8] = [], to destination: IPEndpoint?) {
        guard frame.count <= maximumFrameLength else {
            oversizeOut.bump()
            return
        }
        let (sent, code) = state.withLock { state -> (Int, Int32) in
            guard state.descriptor >= 0 else { return (-1, ENOTCONN) }
            let sent = header.withUnsafeBytes { head in
                Self.sendMessage(state.descriptor, head, frame, to: destination)
            }
            return (sent, sent < 0 ? errno : 0)
        }
        let length = header.count + frame.count
        if sent == length {
            framesOut.bump()
            bytesOut.bump(by: UInt64(frame.count))
        } else if code == ENOTCONN {
            noSocket.bump()
        } else if code == EAGAIN || code == EWOULDBLOCK || code == ENOBUFS {
            sendBusy.bump()
        } else {
            sendErrors.bump()
        }
    }

    /// `head` then `body` as one datagram (`sendmsg`, no copy); the count sent, or -1 with `errno` set.
    private static func sendMessage(
        _ fd: Int32, _ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer, to destination: IPEndpoint?
    ) -> Int {
        var parts = [
            iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count),
        ]
        let flags = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)
        return parts.withUnsafeMutableBufferPointer { vector in
            var message = msghdr()
            message.msg_iov = vector.baseAddress
            message.msg_iovlen = vector.count
            guard let destination else { return sendmsg(fd, &message, flags) }
            return HostSocket.withSocketAddress(destination) { address, length in
                message.msg_name = UnsafeMutableRawPointer(mutating: address)
                message.msg_namelen = length
                return sendmsg(fd, &message, flags)
            }
        }
    }

    /// Reads up to `limit` datagrams (loop thread only) and delivers each frame that `accept` lets through, given
    /// its sender (`nil` on a connected unix socket). `header` answers how many bytes of encapsulation lead the frame
    /// in a datagram, or `nil` to drop it (counted); by default there is none. Answers `errno` when the socket failed,
    /// `nil` when it merely ran dry or the limit was reached.
    package func receive(
        limit: Int, accept: (IPEndpoint?) -> Bool, header: (UnsafeRawBufferPointer) -> Int? = { _ in 0 }
    ) -> Int32? {
        let fd = descriptor
        guard fd >= 0 else { return nil }
        for _ in 0..<limit {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = scratch.withUnsafeMutableBytes { buffer in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(
                            fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | Int32(MSG_TRUNC), $0, &length)
                    }
                }
            }
            if count < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK { return nil }
                if code == EINTR { continue }
                receiveErrors.bump()
                // A refused earlier send (ICMP port unreachable) surfaces here on a UDP socket; it is not fatal.
                if code == ECONNREFUSED { continue }
                return code
            }
            let sender = length > 0 ? HostSocket.endpoint(storage, length: length) : nil
            guard accept(sender) else {
                strangers.bump()
                continue
            }
            guard count <= headerRoom + maximumFrameLength else {
                oversizeIn.bump()
                continue
            }
            let skip = scratch.withUnsafeBytes {
                header(UnsafeRawBufferPointer(rebasing: $0[0..<min(count, $0.count)]))
            }
            guard let skip, skip >= 0, skip <= count else {
                badHeaders.bump()
                continue
            }
            let frameLength = count - skip
            guard frameLength >= EthernetHeader.size else {
                shortIn.bump()
                continue
            }
            guard frameLength <= maximumFrameLength else {
                oversizeIn.bump()
                continue
            }
            deliver(Array(scratch[skip..<count]))
        }
        return nil
    }

    /// Delivers one frame to the port, counted (the loop thread; an attachment that reads frames itself calls this).
    func deliver(_ frame: [UInt8]) {
        guard let port = state.withLock({ $0.port }) else {
            detached.bump()
            return
        }
        if port.deliver(frame) {
            framesIn.bump()
            bytesIn.bump(by: UInt64(frame.count))
        } else {
            queueFull.bump()
        }
    }
}
