import NICCore
import Synchronization

/// A named virtual Ethernet switch (VirtualBox's "internal network"): cards attached to the same network see each
/// other, and nothing else.
///
/// A card joins with `port.attach(network)` and becomes a guest port; host-only and bridged backends join with
/// ``attach(_:role:)`` as host ports. On attach the network raises the port's carrier; on detach it forgets the port
/// and every address learned on it.
///
/// The switch learns source addresses into a bounded table (oldest entry evicted first), sends unicast frames to a
/// learned address to that port only, and floods broadcast, multicast and unknown-unicast frames to every other
/// port. A frame never goes back to the port that sent it. Each drop is counted in ``statistics``.
///
/// Ports transmit from their own threads. The network's state sits behind one lock, and the network never calls
/// into a port (`FramePort.deliver(_:metadata:)`, `FramePort.setCarrier(_:)`) while holding it, so a port's
/// `FramePort.onWork` callback may transmit straight back into the network. Offload metadata is passed on to the
/// destination ports unchanged.
public final class InternalNetwork: NetworkAttachment {
    /// The shortest frame the network forwards: an Ethernet header.
    public static let minimumFrameLength = 14
    /// The default bound of the MAC learning table.
    public static let defaultMACTableCapacity = 4096
    /// The default longest frame the network forwards: a 64 KiB segmentation super-frame plus its headers.
    public static let defaultMaximumFrameLength = 65_536 + 64

    private struct Member {
        weak var port: FramePort?
        var role: SwitchPortRole
        var promiscuous = false
    }

    private struct State {
        var members: [UInt64: Member] = [:]
        var identifiers: [ObjectIdentifier: UInt64] = [:]
        var pendingRoles: [ObjectIdentifier: SwitchPortRole] = [:]
        var nextIdentifier: UInt64 = 1
        var table: MACTable
        var policy: PromiscuousPolicy
        var statistics = InternalNetworkStatistics()

        /// The member for `port`, if it is attached.
        func identifier(of port: FramePort) -> UInt64? {
            guard let id = identifiers[ObjectIdentifier(port)], members[id]?.port === port else { return nil }
            return id
        }

        mutating func remove(_ id: UInt64) {
            guard members.removeValue(forKey: id) != nil else { return }
            identifiers = identifiers.filter { $0.value != id }
            table.forget(port: id)
        }
    }

    /// The network's name.
    public let name: String
    /// The longest frame the network forwards; longer ones are dropped and counted.
    public let maximumFrameLength: Int
    private let state: Mutex<State>

    /// Creates a network on its own. Most users get one by name from an ``InternalNetworkHub`` instead.
    public init(
        name: String, promiscuousPolicy: PromiscuousPolicy = .deny,
        macTableCapacity: Int = InternalNetwork.defaultMACTableCapacity,
        maximumFrameLength: Int = InternalNetwork.defaultMaximumFrameLength
    ) {
        self.name = name
        self.maximumFrameLength = max(Self.minimumFrameLength, maximumFrameLength)
        state = Mutex(State(table: MACTable(capacity: macTableCapacity), policy: promiscuousPolicy))
    }

    /// What promiscuous guest ports may see. Takes effect from the next frame.
    public var promiscuousPolicy: PromiscuousPolicy {
        get { state.withLock { $0.policy } }
        set { state.withLock { $0.policy = newValue } }
    }

    /// Attaches `port` to the network with `role`: `port.attach(network)` with the role recorded first. Call it where
    /// you would call `FramePort.attach(_:)` (on the port owner's thread).
    public func attach(_ port: FramePort, role: SwitchPortRole) {
        let key = ObjectIdentifier(port)
        state.withLock { $0.pendingRoles[key] = role }
        port.attach(self)
        state.withLock { _ = $0.pendingRoles.removeValue(forKey: key) }
    }

    /// The number of ports attached now.
    public var portCount: Int { state.withLock { state in state.members.values.count { $0.port != nil } } }

    /// The number of addresses in the MAC learning table.
    public var learnedAddressCount: Int { state.withLock { $0.table.count } }

    /// The MAC learning table's bound.
    public var macTableCapacity: Int { state.withLock { $0.table.capacity } }

    /// The role `port` was attached with, or `nil` if it is not attached to this network.
    public func role(of port: FramePort) -> SwitchPortRole? {
        state.withLock { state in state.identifier(of: port).flatMap { state.members[$0]?.role } }
    }

    /// A snapshot of the counters.
    public var statistics: InternalNetworkStatistics { state.withLock { $0.statistics } }

    /// The counters by name.
    public var counters: [Counter] { statistics.counters }

    // MARK: NetworkAttachment

    public func didAttach(_ port: FramePort) {
        let key = ObjectIdentifier(port)
        state.withLock { state in
            if let stale = state.identifiers[key] { state.remove(stale) }
            let role = state.pendingRoles.removeValue(forKey: key) ?? .guest
            let id = state.nextIdentifier
            state.nextIdentifier += 1
            state.members[id] = Member(port: port, role: role)
            state.identifiers[key] = id
        }
        port.setCarrier(true)
    }

    public func didDetach(_ port: FramePort) {
        state.withLock { state in
            if let id = state.identifier(of: port) { state.remove(id) }
        }
    }

    public func promiscuousModeChanged(_ promiscuous: Bool, on port: FramePort) {
        state.withLock { state in
            if let id = state.identifier(of: port) { state.members[id]?.promiscuous = promiscuous }
        }
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        let length = frame.count
        guard let destination = MACAddress(in: frame, at: 0), let source = MACAddress(in: frame, at: 6),
            length >= Self.minimumFrameLength
        else {
            state.withLock { state in
                state.statistics.framesIn += 1
                state.statistics.droppedTooShort += 1
            }
            return
        }
        let targets = state.withLock { state -> [FramePort] in
            state.statistics.framesIn += 1
            guard length <= maximumFrameLength else {
                state.statistics.droppedTooLong += 1
                return []
            }
            return Self.route(destination: destination, source: source, from: port, in: &state)
        }
        guard !targets.isEmpty else { return }
        // One copy, shared by every destination: `[UInt8]` is copy-on-write, so no card sees another's changes.
        let bytes = [UInt8](frame)
        var delivered: UInt64 = 0
        for target in targets where target.deliver(bytes, metadata: metadata) { delivered += 1 }
        let refused = UInt64(targets.count) - delivered
        state.withLock { state in
            state.statistics.framesDelivered += delivered
            state.statistics.droppedQueueFull += refused
        }
    }

    // MARK: Forwarding

    /// Learns the source, picks the destination ports and counts the decision. Runs under the lock.
    private static func route(
        destination: MACAddress, source: MACAddress, from port: FramePort, in state: inout State
    ) -> [FramePort] {
        guard let sender = state.identifier(of: port), let senderRole = state.members[sender]?.role else {
            state.statistics.droppedUnknownPort += 1
            return []
        }
        // A group address is never a station's own: forward such frames but do not learn from them.
        if !source.isMulticast, state.table.learn(source, on: sender) { state.statistics.macTableEvictions += 1 }

        if !destination.isMulticast, let owner = state.table.port(for: destination) {
            guard owner != sender else {
                state.statistics.droppedSamePort += 1
                return []
            }
            if let member = state.members[owner], let target = member.port {
                state.statistics.framesSwitched += 1
                var targets = [target]
                for (id, observer) in state.members where id != sender && id != owner && observer.promiscuous {
                    guard let extra = observer.port,
                        mayObserve(
                            observer.role, from: senderRole, to: member.role, under: state.policy)
                    else { continue }
                    targets.append(extra)
                    state.statistics.promiscuousCopies += 1
                }
                return targets
            }
            // The owner went away without detaching: forget it and flood.
            state.remove(owner)
        }
        state.statistics.framesFlooded += 1
        var targets: [FramePort] = []
        var vanished: [UInt64] = []
        for (id, member) in state.members where id != sender {
            if let target = member.port { targets.append(target) } else { vanished.append(id) }
        }
        for id in vanished { state.remove(id) }
        return targets
    }

    /// Whether a promiscuous port with `observer` role gets a copy of a unicast frame between two other ports.
    private static func mayObserve(
        _ observer: SwitchPortRole, from sender: SwitchPortRole, to receiver: SwitchPortRole,
        under policy: PromiscuousPolicy
    ) -> Bool {
        if observer == .host { return true }
        switch policy {
        case .deny: return false
        case .allowVMs: return sender == .guest && receiver == .guest
        case .allowAll: return true
        }
    }
}
