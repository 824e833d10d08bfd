/// Why a card could not be built: the kind of problem and a message naming the model and the value that was wrong.
public struct CardError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem it was, so a host can map it to its own error codes.
    public enum Kind: Hashable, Sendable {
        /// The model name is not one vnic knows or implements.
        case unknownModel
        /// An option is malformed or unknown (`queues=x`, `speed=10`).
        case badOption
        /// An option is well-formed but outside what the model accepts (`queues=17`, `mtu=40`).
        case optionOutOfRange
    }

    /// The kind of problem.
    public var kind: Kind
    /// What was wrong, naming the model, the option and the value.
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
