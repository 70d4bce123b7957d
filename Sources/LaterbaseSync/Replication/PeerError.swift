/// What went wrong with a peer. A peer's answers are input: what it said, or failed to say, is
/// this node's business (its log, its `/status`, its link's backoff), never a client's refusal,
/// so it is not a ``LaterbaseCore/LaterbaseError``.
public struct PeerError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// An answer that is not what a Laterbase node says (a wrong URL, another service, a
        /// hostile or broken peer): the link reports the peer as refused, not unreachable.
        case malformedAnswer
        /// An HTTP status other than 2xx.
        case status(Int)
        /// 410: a position token the peer no longer knows; the link starts that root again by vv.
        case positionExpired
        /// This node cannot meet the peer's terms (CURVE sockets, and no key pair to present).
        case cannotConnect
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
