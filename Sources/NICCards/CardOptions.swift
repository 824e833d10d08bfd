import VirtioNet

/// How a card is built beyond its model and MAC: what a host asks for in `vnic_card_create_with`'s options, and what a
/// trace's `device` line records after the MAC. Written and parsed as space- or comma-separated `key=value` settings:
/// `queues=N` (receive/transmit queue pairs) and `mtu=N` (the MTU virtio-net reports with VIRTIO_NET_F_MTU). The
/// ranges are the cards' own (``CardModel/queuePairLimit``, ``CardModel/mtuLimits``).
public struct CardOptions: Hashable, Sendable {
    /// Receive/transmit queue pairs the card offers (virtio-net: 1 to 16; the other chips have one).
    public var queuePairs: Int
    /// The MTU the card reports to the guest (virtio-net only; 68 to 65535).
    public var mtu: Int

    /// virtio-net's MTU when none is asked for.
    public static let defaultMTU = VirtioNetCard.defaultMTU

    public init(queuePairs: Int = 1, mtu: Int = CardOptions.defaultMTU) {
        self.queuePairs = queuePairs
        self.mtu = mtu
    }

    /// Parses `text` (`queues=4,mtu=9000`; empty for the defaults) and checks it against `model`.
    public init(parsing text: some StringProtocol, for model: CardModel) throws(CardError) {
        self.init()
        for setting in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            let parts = setting.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let value = Int(parts[1]) else {
                throw CardError(.badOption, "bad card option '\(setting)' (expected queues=N or mtu=N)")
            }
            switch parts[0] {
            case "queues": queuePairs = value
            case "mtu": mtu = value
            default: throw CardError(.badOption, "unknown card option '\(parts[0])' (known: queues, mtu)")
            }
        }
        try check(for: model)
    }

    /// Throws unless `model` can be built with these options.
    public func check(for model: CardModel) throws(CardError) {
        guard (1...model.queuePairLimit).contains(queuePairs) else {
            throw CardError(
                .optionOutOfRange,
                "\(model.rawValue) offers 1 to \(model.queuePairLimit) queue pairs; queues=\(queuePairs)")
        }
        if let limits = model.mtuLimits {
            guard limits.contains(mtu) else {
                throw CardError(
                    .optionOutOfRange,
                    "\(model.rawValue) mtu=\(mtu) is outside \(limits.lowerBound)...\(limits.upperBound)")
            }
        } else if mtu != Self.defaultMTU {
            throw CardError(
                .badOption, "\(model.rawValue) has no MTU setting; the guest's driver chooses (mtu=\(mtu))")
        }
    }

    /// The settings that differ from the defaults, space-separated (empty for the defaults).
    public var text: String {
        var settings: [String] = []
        if queuePairs != 1 { settings.append("queues=\(queuePairs)") }
        if mtu != Self.defaultMTU { settings.append("mtu=\(mtu)") }
        return settings.joined(separator: " ")
    }
}
