import E1000
import NICCore
import PCNet
import VirtioNet

/// The six adapter types, as the trace format and the CLI name them.
public enum CardModel: String, CaseIterable, Sendable {
    case am79c970a
    case am79c973
    case e82540em = "82540em"
    case e82543gc = "82543gc"
    case e82545em = "82545em"
    case virtio

    /// The models vnic implements so far.
    public static var implemented: [CardModel] { allCases.filter(\.isImplemented) }

    /// Whether the model exists yet.
    public var isImplemented: Bool {
        switch self {
        case .am79c970a, .am79c973, .e82540em, .e82543gc, .e82545em, .virtio: return true
        }
    }

    /// The card's name as VirtualBox shows it.
    public var displayName: String {
        switch self {
        case .am79c970a: return "PCnet-PCI II (Am79C970A)"
        case .am79c973: return "PCnet-FAST III (Am79C973)"
        case .e82540em: return "PRO/1000 MT Desktop (82540EM)"
        case .e82543gc: return "PRO/1000 T Server (82543GC)"
        case .e82545em: return "PRO/1000 MT Server (82545EM)"
        case .virtio: return "virtio-net"
        }
    }

    /// The most queue pairs the model offers, as its card module publishes it: 16 for virtio-net
    /// (VIRTIO_NET_F_MQ), 1 for the chips with one queue.
    public var queuePairLimit: Int { self == .virtio ? VirtioNetCard.queuePairLimit : 1 }

    /// The MTUs the model can report to the guest, as its card module publishes them; `nil` for the chips that
    /// report none (their driver chooses).
    public var mtuLimits: ClosedRange<Int>? { self == .virtio ? VirtioNetCard.mtuLimits : nil }

    /// The model named `name` (case-insensitive), if vnic implements it.
    public init(named name: some StringProtocol) throws(CardError) {
        guard let model = CardModel(rawValue: name.lowercased()), model.isImplemented else {
            let known = CardModel.implemented.map(\.rawValue).joined(separator: ", ")
            throw CardError(.unknownModel, "unknown card model '\(name)' (known: \(known))")
        }
        self = model
    }

    /// Builds a card of this model with `options` (queue pairs and MTU where the model has them).
    public func make(
        macAddress: MACAddress, environment: CardEnvironment, options: CardOptions = CardOptions()
    ) throws(CardError) -> any NetworkCard {
        try options.check(for: self)
        switch self {
        case .am79c970a: return PCNetCard(chip: .am79C970A, macAddress: macAddress, environment: environment)
        case .am79c973: return PCNetCard(chip: .am79C973, macAddress: macAddress, environment: environment)
        case .e82540em: return E1000Card(chip: .i82540EM, macAddress: macAddress, environment: environment)
        case .e82543gc: return E1000Card(chip: .i82543GC, macAddress: macAddress, environment: environment)
        case .e82545em: return E1000Card(chip: .i82545EM, macAddress: macAddress, environment: environment)
        case .virtio:
            return VirtioNetCard(
                macAddress: macAddress, environment: environment, queuePairs: options.queuePairs, mtu: options.mtu)
        }
    }
}
