import Glibc
import NICCore

/// One read transfer of the built-in TFTP server (RFC 1350, with the blksize and tsize options of RFC 2348/2349).
struct TFTPSession {
    var fd: Int32
    /// The server's transfer port (its TID) at the gateway address.
    var serverPort: UInt16
    var blockSize: Int
    var size: Int
    /// The block last sent (0 while an option acknowledgment waits for ACK 0).
    var block: Int
    var lastPacket: [UInt8]
    var finished = false
    var tries = 0
    var deadline: UInt64
}

/// TFTP opcodes (RFC 1350, RFC 2347).
enum TFTPOpcode: UInt16 {
    case read = 1
    case write, data, ack, error, optionAck
}

extension NATEngine {
    static let tftpTimeout: Double = 1
    static let tftpMaxTries = 5

    /// Whether a datagram from the guest to `destination` belongs to the TFTP server.
    func isTFTP(_ destination: IPv4Endpoint, from guest: IPv4Endpoint) -> Bool {
        guard config.tftpRoot != nil, destination.address == config.gateway else { return false }
        return destination.port == WellKnownPort.tftp.rawValue || tftpSessions[guest]?.serverPort == destination.port
    }

    func handleTFTP(_ payload: [UInt8], from guest: IPv4Endpoint, to destination: IPv4Endpoint) {
        guard payload.count >= 4 else { return counts.bump(.dropTFTPMalformed) }
        let opcode = TFTPOpcode(rawValue: payload.bigEndian16(at: 0))
        if destination.port == WellKnownPort.tftp.rawValue {
            switch opcode {
            case .read: return startTFTP(payload, from: guest)
            case .write:
                counts.bump(.tftpRefused)
                return sendTFTPError(2, "read-only server", to: guest, from: WellKnownPort.tftp.rawValue)
            default: return counts.bump(.dropTFTPMalformed)
            }
        }
        guard var session = tftpSessions[guest] else { return }
        switch opcode {
        case .ack:
            let acknowledged = Int(payload.bigEndian16(at: 2))
            guard acknowledged == session.block & 0xFFFF else { return }  // a duplicate or stale ACK
            if session.finished {
                closeTFTP(guest)
                return
            }
            session.block += 1
            session.tries = 0
            tftpSessions[guest] = session
            sendTFTPBlock(to: guest)
        case .error:
            closeTFTP(guest)
        default:
            counts.bump(.dropTFTPMalformed)
        }
    }

    private func startTFTP(_ payload: [UInt8], from guest: IPv4Endpoint) {
        // filename NUL mode NUL [option NUL value NUL]...
        var fields: [String] = []
        var start = 2
        for index in 2..<payload.count where payload[index] == 0 {
            fields.append(String(decoding: payload[start..<index], as: UTF8.self))
            start = index + 1
            if fields.count > 16 { break }
        }
        guard fields.count >= 2, !fields[0].isEmpty, fields[0].utf8.count <= 255 else {
            return counts.bump(.dropTFTPMalformed)
        }
        let mode = fields[1].lowercased()
        guard mode == "octet" || mode == "netascii" else {
            counts.bump(.tftpRefused)
            return sendTFTPError(0, "unsupported mode \(fields[1])", to: guest, from: WellKnownPort.tftp.rawValue)
        }
        guard let path = tftpPath(fields[0]) else {
            counts.bump(.tftpRefused)
            return sendTFTPError(2, "access violation", to: guest, from: WellKnownPort.tftp.rawValue)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            counts.bump(.tftpRefused)
            return sendTFTPError(1, "file not found", to: guest, from: WellKnownPort.tftp.rawValue)
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            counts.bump(.tftpRefused)
            return sendTFTPError(1, "file not found", to: guest, from: WellKnownPort.tftp.rawValue)
        }
        if let old = tftpSessions[guest] { close(old.fd) }
        guard tftpSessions.count < config.limits.tftpSessions || tftpSessions[guest] != nil else {
            close(fd)
            counts.bump(.dropTFTPSessionLimit)
            return sendTFTPError(0, "too many transfers", to: guest, from: WellKnownPort.tftp.rawValue)
        }
        var session = TFTPSession(
            fd: fd, serverPort: UInt16.random(in: 49_152...65_535), blockSize: 512, size: Int(info.st_size), block: 1,
            lastPacket: [], deadline: 0)
        // Options (RFC 2347): acknowledge blksize and tsize, ignore the rest.
        var acknowledged: [UInt8] = []
        var index = 2
        while index + 1 < fields.count {
            let name = fields[index].lowercased()
            let value = fields[index + 1]
            if name == "blksize", let asked = Int(value), asked >= 8 {
                session.blockSize = min(asked, 65_464, config.mtu - 20 - 8 - 4)
                acknowledged += Array("blksize".utf8) + [0] + Array(String(session.blockSize).utf8) + [0]
            } else if name == "tsize" {
                acknowledged += Array("tsize".utf8) + [0] + Array(String(session.size).utf8) + [0]
            }
            index += 2
        }
        counts.bump(.tftpTransfers)
        if !acknowledged.isEmpty {
            session.block = 0
            var packet: [UInt8] = []
            packet.appendBigEndian16(TFTPOpcode.optionAck.rawValue)
            packet += acknowledged
            session.lastPacket = packet
            tftpSessions[guest] = session
            transmitTFTP(to: guest)
        } else {
            tftpSessions[guest] = session
            sendTFTPBlock(to: guest)
        }
    }

    /// The file for `name` under the TFTP root, or `nil` when it would lie outside it.
    func tftpPath(_ name: String) -> String? {
        guard let root = config.tftpRoot, !name.hasPrefix("/"), !name.utf8.contains(0x5C),
            !name.split(separator: "/").contains(".."), !name.utf8.contains(0)
        else { return nil }
        guard let realRoot = realpath(root, nil) else { return nil }
        defer { free(realRoot) }
        let base = String(cString: realRoot)
        let candidate = base + "/" + name
        // A symbolic link inside the root must not lead out of it.
        guard let resolved = realpath(candidate, nil) else { return candidate }  // missing: open() says so
        defer { free(resolved) }
        let target = String(cString: resolved)
        return target.hasPrefix(base + "/") ? target : nil
    }

    private func sendTFTPBlock(to guest: IPv4Endpoint) {
        guard var session = tftpSessions[guest] else { return }
        let offset = (session.block - 1) * session.blockSize
        var data = [UInt8](repeating: 0, count: session.blockSize)
        let count = data.withUnsafeMutableBytes { pread(session.fd, $0.baseAddress, session.blockSize, off_t(offset)) }
        guard count >= 0 else {
            sendTFTPError(0, "read error", to: guest, from: session.serverPort)
            return closeTFTP(guest)
        }
        var packet: [UInt8] = []
        packet.appendBigEndian16(TFTPOpcode.data.rawValue)
        packet.appendBigEndian16(UInt16(truncatingIfNeeded: session.block))
        packet += data.prefix(count)
        session.finished = count < session.blockSize
        session.lastPacket = packet
        tftpSessions[guest] = session
        transmitTFTP(to: guest)
    }

    private func transmitTFTP(to guest: IPv4Endpoint) {
        guard var session = tftpSessions[guest] else { return }
        session.deadline = now &+ nanoseconds(Self.tftpTimeout)
        tftpSessions[guest] = session
        arm(session.deadline)
        sendUDPToGuest(
            from: IPv4Endpoint(config.gateway, session.serverPort), to: guest, payload: session.lastPacket)
    }

    private func sendTFTPError(_ code: UInt16, _ message: String, to guest: IPv4Endpoint, from port: UInt16) {
        var packet: [UInt8] = []
        packet.appendBigEndian16(TFTPOpcode.error.rawValue)
        packet.appendBigEndian16(code)
        packet += Array(message.utf8) + [0]
        sendUDPToGuest(from: IPv4Endpoint(config.gateway, port), to: guest, payload: packet)
    }

    private func closeTFTP(_ guest: IPv4Endpoint) {
        guard let session = tftpSessions.removeValue(forKey: guest) else { return }
        close(session.fd)
    }

    /// Retransmits unacknowledged blocks; gives up after a few tries. Returns the next deadline.
    func runTFTPTimers() -> UInt64? {
        var next: UInt64? = nil
        for (guest, session) in tftpSessions {
            guard session.deadline <= now else {
                next = min(next ?? session.deadline, session.deadline)
                continue
            }
            if session.tries >= Self.tftpMaxTries {
                counts.bump(.tftpTimeouts)
                closeTFTP(guest)
                continue
            }
            tftpSessions[guest]?.tries += 1
            transmitTFTP(to: guest)
            if let deadline = tftpSessions[guest]?.deadline { next = min(next ?? deadline, deadline) }
        }
        return next
    }
}
