import CNetShims
import Glibc

/// A connection's real host socket: a non-blocking TCP socket registered with the engine's event loop.
final class NATHostTCPSocket: NATSocket {
    let fd: Int32
    /// The engine that holds the connection, so outlives this socket.
    private unowned(unsafe) let engine: NATEngine

    /// Wraps `fd`, which the engine registers (and ``close()`` releases).
    init(_ fd: Int32, engine: NATEngine) {
        self.fd = fd
        self.engine = engine
    }

    func send(_ bytes: UnsafeRawBufferPointer) -> Int { HostSocket.send(fd, bytes) }

    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let received = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
        return received >= 0 ? received : -Int(errno)
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func pendingError() -> Int32 { HostSocket.pendingError(fd) }

    var sendSpace: Int { HostSocket.sendSpace(fd) }

    func setInterest(_ events: UInt32) { engine.loop.modify(fd, events: events) }

    func abort() { HostSocket.abort(fd) }

    func close() { engine.release(fd) }
}
