/// One `NAME=VALUE` property of a host-facing attachment's settings (`udptunnel:sport=4444,dport=4445`): its name and
/// how it sets its field from the text, answering why it cannot when the text is wrong.
struct AttachmentProperty<Configuration>: Sendable {
    let name: String
    let apply: @Sendable (inout Configuration, String) -> String?

    /// Applies `text`, properties separated by `,` or `;`, to `configuration`; the error names `kind`, the property
    /// and what is wrong with it, or lists the known properties.
    static func apply(
        _ text: String, to configuration: inout Configuration, kind: String, properties: [AttachmentProperty]
    ) throws(HostLinkError) {
        for item in text.split(whereSeparator: { $0 == "," || $0 == ";" }) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let property = properties.first(where: { $0.name == parts[0] }) else {
                let known = properties.map(\.name).joined(separator: ", ")
                throw .invalid("\(kind): unknown property '\(item)' (known: \(known), each NAME=VALUE)")
            }
            if let reason = property.apply(&configuration, String(parts[1])) {
                throw .invalid("\(kind): \(property.name)=\(parts[1]): \(reason)")
            }
        }
    }

    /// A property holding a UDP port, 1 to 65535 (or 0 too, with `allowingZero`).
    static func port(_ name: String, allowingZero: Bool = false, _ field: WritableKeyPath<Configuration, UInt16>)
        -> AttachmentProperty
    {
        nonisolated(unsafe) let field = field
        return AttachmentProperty(name: name) { configuration, text in
            guard let port = UInt16(text), allowingZero || port != 0 else {
                return "expected a port, \(allowingZero ? 0 : 1) to 65535"
            }
            configuration[keyPath: field] = port
            return nil
        }
    }

    /// A property holding an IPv4 or IPv6 address.
    static func address(_ name: String, _ field: WritableKeyPath<Configuration, IPAddress>) -> AttachmentProperty {
        nonisolated(unsafe) let field = field
        return AttachmentProperty(name: name) { configuration, text in
            guard let address = IPAddress(text) else { return "expected an IPv4 or IPv6 address" }
            configuration[keyPath: field] = address
            return nil
        }
    }

    /// A property holding an optional IPv4 or IPv6 address.
    static func address(_ name: String, _ field: WritableKeyPath<Configuration, IPAddress?>) -> AttachmentProperty {
        nonisolated(unsafe) let field = field
        return AttachmentProperty(name: name) { configuration, text in
            guard let address = IPAddress(text) else { return "expected an IPv4 or IPv6 address" }
            configuration[keyPath: field] = address
            return nil
        }
    }
}
