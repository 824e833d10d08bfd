import NICCore

/// An attachment named by a settings string, as a host's configuration spells it (the C interface's
/// `vnic_card_attach`, the QEMU device's `attach=` property).
///
/// Grammar: `null` (not attached) or `intnet:NAME` (the internal network called NAME in a hub). Names are 1 to 64
/// printable ASCII characters without spaces.
public enum AttachmentSetting: Hashable, Sendable, CustomStringConvertible {
    /// Not attached: carrier down, transmitted frames dropped and counted.
    case null
    /// The internal network of that name.
    case internalNetwork(name: String)

    /// The longest internal network name accepted.
    public static let maximumNameLength = 64

    /// Parses a settings string.
    public init(parsing text: String) throws(AttachmentSettingError) {
        if text == "null" {
            self = .null
            return
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw AttachmentSettingError(setting: text, reason: "expected 'null' or 'intnet:NAME'")
        }
        let kind = text[..<colon]
        let argument = String(text[text.index(after: colon)...])
        switch kind {
        case "intnet":
            guard !argument.isEmpty, argument.utf8.count <= Self.maximumNameLength,
                argument.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw AttachmentSettingError(
                    setting: text,
                    reason: "an internal network name is 1 to \(Self.maximumNameLength) printable ASCII characters")
            }
            self = .internalNetwork(name: argument)
        default:
            throw AttachmentSettingError(setting: text, reason: "unknown attachment '\(kind)' (known: null, intnet)")
        }
    }

    /// The attachment this setting names; internal networks come from `hub`.
    public func makeAttachment(hub: InternalNetworkHub = .shared) -> any NetworkAttachment {
        switch self {
        case .null: return NullAttachment()
        case .internalNetwork(let name): return hub.network(named: name)
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .internalNetwork(let name): return "intnet:" + name
        }
    }
}

/// A settings string that does not name an attachment.
public struct AttachmentSettingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The string as given.
    public var setting: String
    /// What is wrong with it.
    public var reason: String

    public var description: String { "attachment setting '\(setting)': \(reason)" }
}
