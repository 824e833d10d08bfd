import CNetShims
import Glibc
import NICCore
import Synchronization

/// VirtualBox's bridged networking: the card sits on a host interface (an Ethernet port, a veth, a bridge) as one
/// more machine on its wire, through an AF_PACKET socket.
///
/// ```swift
/// let bridged = try BridgedAttachment(configuration: BridgedConfiguration(interface: "eth0"))   // needs CAP_NET_RAW
/// card.port.attach(bridged)          // carrier follows eth0's
/// ```
///
/// Frames arrive through a TPACKET_V3 receive ring, read in place; a VLAN tag the interface stripped is put back from
/// what the kernel reports. Each frame comes with a virtio-net header, so what a sender on this host left to the
/// "hardware" (a partial checksum, a TSO super-frame over a veth) is finished, checksummed and segmented, before the
/// card sees it. Frames go out bypassing the qdisc, which also keeps the socket from seeing its own
/// frames again; the host's own frames on the interface still reach the card. The interface takes the card's MAC
/// address into its unicast filter (learned from the card's first frame) and is put in promiscuous mode only while
/// the card asks for it; both end with the attachment. The card's link follows the interface's carrier (rtnetlink),
/// and goes down for good, counted, if the interface disappears. Frames longer than the interface's MTU (plus the
/// Ethernet header and one VLAN tag) are dropped and counted.
public final class BridgedAttachment: NetworkAttachment {
    /// The interface the card is on.
    public let configuration: BridgedConfiguration
    private let runtime: BridgedRuntime

    /// Opens the packet socket on the interface and starts the event loop. Throws, naming the interface, when it
    /// does not exist or the socket cannot be made (without CAP_NET_RAW, say).
    public init(configuration: BridgedConfiguration) throws(HostLinkError) {
        try configuration.validate()
        self.configuration = configuration
        runtime = try BridgedRuntime(interface: configuration.interface)
    }

    deinit { runtime.close() }

    /// Stops the event loop and closes the socket (the interface leaves promiscuous mode and forgets the card's MAC).
    /// Safe to call more than once.
    public func close() { runtime.close() }

    /// The interface's MTU when the attachment opened it.
    public var mtu: Int { runtime.mtu }

    /// Whether the interface's carrier is up (the card's link).
    public var isLinkUp: Bool { runtime.frames.isLinkUp }

    /// Frames and bytes each way, VLAN tags restored, link changes, and one counter per reason a frame was dropped.
    public var counters: [Counter] { runtime.counters }

    /// The value of the counter named `name` (0 if there is none).
    public func counter(_ name: String) -> UInt64 { counters.first { $0.name == name }?.value ?? 0 }

    // MARK: NetworkAttachment

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        runtime.send(frame)
    }

    public func didAttach(_ port: FramePort) { runtime.frames.attach(port) }

    public func didDetach(_ port: FramePort) { runtime.frames.detach(port) }

    public func promiscuousModeChanged(_ promiscuous: Bool, on port: FramePort) {
        runtime.setPromiscuous(promiscuous)
    }
}

/// What the bridged attachment and its event loop thread share: the thread holds this, not the attachment.
final class BridgedRuntime: @unchecked Sendable {
    let frames: DatagramFrames
    let mtu: Int
    private let name: String
    private let index: Int32
    private let socket: Int32
    private let netlink: Int32
    private var ring: PacketRing
    /// What precedes each frame sent: an empty virtio-net header (nothing to offload) when the socket has them.
    private let sendHeader: [UInt8]
    private let thread: EventLoopThread
    private let closed = OnceFlag()
    /// The card's MAC as learned from its frames (0: none yet), and whether the interface is promiscuous for it.
    private let filter = Mutex<(mac: UInt64, promiscuous: Bool)>((0, false))
    private let vlanRestored = HostLinkCounter("bridged_vlan_tags_restored")
    private let ownFrames = HostLinkCounter("bridged_own_frames_ignored")
    private let malformed = HostLinkCounter("bridged_ring_malformed")
    private let linkChanges = HostLinkCounter("bridged_link_changes")
    private let interfaceGone = HostLinkCounter("bridged_interface_gone")
    private let offloadsFinished = HostLinkCounter("bridged_offloads_finished")
    /// Loop-thread only: finishes the checksums a local sender left to "hardware".
    private var finisher = FrameFinisher()

    /// Packet types (sockaddr_ll) and ring status bits, from Linux's if_packet.h.
    private static let outgoing: UInt8 = 4
    private static let checksumNotReady: UInt32 = 0x08
    private static let vlanValid: UInt32 = 0x10
    private static let vlanTPIDValid: UInt32 = 0x40
    private static let qdiscBypass: Int32 = 20
    private static let vnetHeaderOption: Int32 = 15
    private static let ignoreOutgoing: Int32 = 23
    private static let promiscuousMembership: Int32 = 1
    private static let allMulticastMembership: Int32 = 2
    private static let unicastMembership: Int32 = 3
    /// Ring blocks read per wakeup.
    private static let blocksPerWakeup = 4

    init(interface name: String) throws(HostLinkError) {
        let label = "bridged \(name)"
        let index = Int32(bitPattern: if_nametoindex(name))
        guard index > 0 else { throw .invalid("\(label): no such interface") }
        let everyProtocol = Int32(UInt16(0x0003).bigEndian)  // ETH_P_ALL
        let fd = Glibc.socket(
            AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            everyProtocol)
        guard fd >= 0 else { throw .system("\(label): AF_PACKET socket", errno: errno) }
        var setUp = false
        defer { if !setUp { Glibc.close(fd) } }
        // With virtio-net headers the kernel says what a local sender left unfinished (a partial checksum, a TSO
        // super-frame over a veth), so those frames can be finished for the card; the option must precede the ring.
        let vnet = cnet_packet_option(fd, Self.vnetHeaderOption, 1) == 0
        let ring = try PacketRing(fd: fd, vnetHeaders: vnet)
        defer { if !setUp { ring.unmap() } }
        let bound = cnet_packet_bind(fd, index)
        guard bound == 0 else { throw .system("\(label): bind", errno: -bound) }
        // Bypassing the qdisc also keeps our own frames from coming back through the ring; without it, say so.
        if cnet_packet_option(fd, Self.qdiscBypass, 1) != 0 {
            _ = cnet_packet_option(fd, Self.ignoreOutgoing, 1)
        }
        _ = cnet_packet_membership(fd, index, Self.allMulticastMembership, nil, 1)
        let monitor = cnet_netlink_link_monitor()
        guard monitor >= 0 else { throw .system("\(label): rtnetlink", errno: -monitor) }
        defer { if !setUp { Glibc.close(monitor) } }
        let thread = try EventLoopThread.hostLink(named: label)
        guard thread.loop.add(fd, events: EventLoop.readable), thread.loop.add(monitor, events: EventLoop.readable)
        else { throw .system("\(label): epoll_ctl", errno: errno) }
        self.name = name
        self.index = index
        self.socket = fd
        self.ring = ring
        sendHeader = vnet ? [UInt8](repeating: 0, count: VirtioNetHeader.size) : []
        self.netlink = monitor
        self.thread = thread
        mtu = Self.readNumber("/sys/class/net/\(name)/mtu") ?? 1500
        frames = DatagramFrames(
            counterPrefix: "bridged", maximumFrameLength: max(mtu, 1500) + EthernetHeader.size + 4)
        frames.replaceDescriptor(with: fd)
        frames.setLink(Self.carrier(of: name))
        do {
            try thread.startHostLink { [self] ready in service(ready) }
        } catch {
            _ = closed.set()
            frames.replaceDescriptor(with: -1)
            throw error
        }
        setUp = true
    }

    var counters: [Counter] {
        frames.counters
            + [vlanRestored, ownFrames, malformed, linkChanges, interfaceGone, offloadsFinished].map {
                Counter($0.name, $0.current)
            }
    }

    func close() {
        guard closed.set() else { return }
        thread.stop()
        frames.replaceDescriptor(with: -1)
        Glibc.close(socket)
        Glibc.close(netlink)
        ring.unmap()
    }

    // MARK: The card's thread

    func send(_ frame: UnsafeRawBufferPointer) {
        if frame.count >= 12 { learn(source: frame) }
        frames.send(frame, header: sendHeader, to: nil)
    }

    /// Puts the card's MAC in the interface's unicast filter when it first appears (or changes).
    private func learn(source frame: UnsafeRawBufferPointer) {
        var mac: UInt64 = 0
        for index in 6..<12 { mac = mac << 8 | UInt64(frame[index]) }
        guard mac & 0x0100_0000_0000 == 0 else { return }  // a group address is no card's own
        let old = filter.withLock { state -> UInt64? in
            guard state.mac != mac else { return nil }
            defer { state.mac = mac }
            return state.mac
        }
        guard let old else { return }
        if old != 0 { membership(Self.unicastMembership, mac: old, add: false) }
        membership(Self.unicastMembership, mac: mac, add: true)
    }

    func setPromiscuous(_ promiscuous: Bool) {
        let changed = filter.withLock { state -> Bool in
            defer { state.promiscuous = promiscuous }
            return state.promiscuous != promiscuous
        }
        if changed { membership(Self.promiscuousMembership, mac: nil, add: promiscuous) }
    }

    private func membership(_ type: Int32, mac: UInt64?, add: Bool) {
        guard !closed.isSet else { return }
        if let mac {
            let bytes = (0..<6).map { UInt8(truncatingIfNeeded: mac >> (40 - 8 * $0)) }
            _ = bytes.withUnsafeBufferPointer {
                cnet_packet_membership(socket, index, type, $0.baseAddress, add ? 1 : 0)
            }
        } else {
            _ = cnet_packet_membership(socket, index, type, nil, add ? 1 : 0)
        }
    }

    // MARK: Loop thread

    private func service(_ ready: [(Int32, UInt32)]) {
        for (fd, _) in ready where fd == netlink { linkMaybeChanged() }
        var bad = 0
        let own = filter.withLock { $0.mac }
        let blocks = ring.read(limit: Self.blocksPerWakeup, malformed: &bad) { packet in take(packet, own: own) }
        if bad > 0 { malformed.bump(by: UInt64(bad)) }
        // The ring may hold more than one wakeup's worth: come back at once rather than wait for a new packet.
        if blocks == Self.blocksPerWakeup { thread.loop.wake() }
    }

    private func take(_ packet: PacketRing.Packet, own: UInt64) {
        let frame = packet.frame
        guard frame.count >= EthernetHeader.size else {
            frames.shortIn.bump()
            return
        }
        if packet.type == Self.outgoing, own != 0 {
            var source: UInt64 = 0
            for index in 6..<12 { source = source << 8 | UInt64(frame[index]) }
            if source == own {
                ownFrames.bump()
                return
            }
        }
        let stripped =
            packet.status & Self.vlanValid != 0
            && (packet.vlanTCI != 0 || packet.status & Self.vlanTPIDValid != 0)
        let tpid = packet.status & Self.vlanTPIDValid != 0 ? packet.vlanTPID : EtherType.vlan
        if let header = packet.vnetHeader, !stripped || tpid == EtherType.vlan {
            deliver(frame, header: header, vlan: stripped ? packet.vlanTCI : nil)
            return
        }
        var bytes: [UInt8]
        if stripped {
            bytes = Array(frame[0..<12])
            bytes.appendBigEndian16(tpid)
            bytes.appendBigEndian16(packet.vlanTCI)
            bytes += frame[12...]
            vlanRestored.bump()
        } else {
            bytes = Array(frame)
        }
        if packet.status & Self.checksumNotReady != 0, let finished = finishChecksum(bytes) {
            bytes = finished
        }
        frames.deliver(bytes)
    }

    /// Delivers `frame` finished as its virtio-net header asks (checksummed, and segmented when the sender left a TSO
    /// super-frame, each segment as the sender's stack would have sent it), with the VLAN tag `vlan` the interface
    /// stripped put back.
    private func deliver(_ frame: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, vlan: UInt16?) {
        guard let parsed = VirtioNetHeader(header), var metadata = parsed.metadata(form: .udpL4) else {
            frames.badHeaders.bump()
            return
        }
        metadata.vlanTag = vlan
        if vlan != nil { vlanRestored.bump() }
        guard !metadata.isFinished else {
            frames.deliver(Array(frame))
            return
        }
        var segments: [[UInt8]] = []
        do throws(FrameFinisherError) {
            try finisher.finish(frame, metadata: metadata) { segments.append(Array($0)) }
        } catch {
            frames.badHeaders.bump()
            return
        }
        if metadata.checksum != nil || metadata.segmentation != nil { offloadsFinished.bump() }
        for segment in segments { frames.deliver(segment) }
    }

    /// A frame from a sender on this host (a veth's far side, the host's own stack) whose TCP or UDP checksum was
    /// left for the "hardware" to finish, as the card's guest would otherwise see it: with only the pseudo-header
    /// summed. `nil` when it is neither TCP nor UDP over IP (nothing to finish).
    private func finishChecksum(_ frame: [UInt8]) -> [UInt8]? {
        frame.withUnsafeBytes { raw -> [UInt8]? in
            for (proto, offset) in [(IPProtocolNumber.tcp, 16), (IPProtocolNumber.udp, 6)] {
                guard let layout = try? TransportLayout(raw, protocolNumber: proto, ipv6: nil) else { continue }
                var finished: [UInt8]?
                let request = FrameMetadata(checksum: ChecksumRequest(start: layout.transport, offset: offset))
                _ = try? finisher.finish(raw, metadata: request) { finished = Array($0) }
                if finished != nil { offloadsFinished.bump() }
                return finished
            }
            return nil
        }
    }

    /// Drains rtnetlink and sets the link from the interface's carrier; an interface that is gone (or replaced by
    /// another of the same name) leaves the link down.
    private func linkMaybeChanged() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        for _ in 0..<64 {
            let count = buffer.withUnsafeMutableBytes { recv(netlink, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count <= 0 { break }
        }
        let present = if_nametoindex(name) == UInt32(bitPattern: index)
        let up = present && Self.carrier(of: name)
        if !present, frames.isLinkUp || interfaceGone.current == 0 { interfaceGone.bump() }
        guard up != frames.isLinkUp else { return }
        linkChanges.bump()
        frames.setLink(up)
    }

    /// Whether `/sys/class/net/NAME/carrier` says 1 (it cannot be read while the interface is down).
    static func carrier(of name: String) -> Bool { readNumber("/sys/class/net/\(name)/carrier") == 1 }

    /// The decimal number at the start of a small file, or `nil`.
    static func readNumber(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[0..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }
}
