/// Who a request, a ZeroMQ connection or a peer link acts as, and what its role lets it do:
/// the one place the rules of CONTRACT.md "Access" live, used by HTTP, the ingest and publish
/// sockets and peer links alike.
public struct Principal: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        /// Everything.
        case admin
        /// Another node: reads every root, writes new and recorded events of any origin.
        case peer
        /// An edge device: writes its `write` roots (recorded events only of its own origin), reads its `read` roots.
        case device
        /// Reads its `read` roots.
        case reader
        /// `/metrics` and `/node` only.
        case monitor
    }

    /// Roots a device or reader may write or read: all of them, or those named.
    public enum Roots: Sendable, Equatable {
        case all
        case named(Set<String>)

        public func contains(_ root: String) -> Bool {
            switch self {
            case .all: true
            case .named(let names): names.contains(root)
            }
        }
    }

    /// The ZeroMQ sockets a principal may connect to.
    public enum Socket: String, Sendable, CaseIterable {
        case ingest, publish
    }

    public let name: String
    public let role: Role
    /// SHA-256 of the bearer token, 32 bytes.
    public let tokenSHA256: [UInt8]
    /// The CURVE public key, 40 characters of Z85, if the principal uses ZeroMQ.
    public let curvePublicKey: String?
    /// A device's one origin.
    public let origin: String?
    public let write: Roots
    public let read: Roots

    public init(name: String, role: Role, tokenSHA256: [UInt8], curvePublicKey: String? = nil, origin: String? = nil, write: Roots = .named([]), read: Roots = .named([])) {
        self.name = name
        self.role = role
        self.tokenSHA256 = tokenSHA256
        self.curvePublicKey = curvePublicKey
        self.origin = origin
        self.write = write
        self.read = read
    }

    /// What a node without `--credentials` gives every caller: everything, as in v1.
    public static let open = Principal(name: "open", role: .admin, tokenSHA256: [], write: .all, read: .all)

    /// Whether it may read `root` (`GET /e/{root}`, `GET /a/{root}…`).
    public func mayRead(_ root: String) -> Bool {
        switch role {
        case .admin, .peer: true
        case .device, .reader: read.contains(root)
        case .monitor: false
        }
    }

    /// Whether it may write to `root` at all (which origins, ``authorizeWrite(_:)`` says).
    public func mayWrite(_ root: String) -> Bool {
        switch role {
        case .admin, .peer: true
        case .device: write.contains(root)
        case .reader, .monitor: false
        }
    }

    /// `GET /metrics`.
    public var mayReadMetrics: Bool { role == .admin || role == .monitor }

    /// Whether `/node` shows it the state of the node's link to the peer `replica` (its
    /// position, errors, stalls): admins, peers and monitors see every link; a device only the
    /// link to itself (whether the node syncs back with it); a reader none.
    public func mayViewPeer(replica: String?) -> Bool {
        switch role {
        case .admin, .peer, .monitor: true
        case .device: replica != nil && replica == origin
        case .reader: false
        }
    }

    /// Whether it may connect to the node's `socket`.
    public func mayConnect(to socket: Socket) -> Bool {
        switch (role, socket) {
        case (.admin, _), (.peer, _): true
        case (.device, .ingest): true
        case (.device, .publish), (.reader, .publish): read == .all
        case (.reader, .ingest), (.monitor, _): false
        }
    }

    /// Refuses (403 `forbidden`) `GET /metrics` to all but admins and monitors.
    public func authorizeMetrics() throws(LaterbaseError) {
        guard mayReadMetrics else { throw LaterbaseError(.forbidden, "\(name) (\(role.rawValue)) may not read /metrics") }
    }

    /// Refuses (403 `forbidden`) what only an admin may do (`GET /stats`).
    public func authorizeAdmin(_ what: String) throws(LaterbaseError) {
        guard role == .admin else { throw LaterbaseError(.forbidden, "\(name) (\(role.rawValue)) may not read \(what); only an admin may") }
    }

    /// Whether its recorded events are replication, for which the merge is total (contract v3:
    /// an event the schema refuses is kept unfolded): a peer's or an admin's. On a node without
    /// credentials (``open``), only when the request says so (`declared`: a peer link's POST
    /// carries the `Laterbase-Replica` header), so that a client's POST is checked as a client's.
    public func replicates(declared: Bool) -> Bool {
        if self == .open { return declared }
        return role == .admin || role == .peer
    }

    /// Refuses (403 `forbidden`) a read of `root` it may not make.
    public func authorizeRead(_ root: String) throws(LaterbaseError) {
        guard mayRead(root) else {
            throw LaterbaseError(.forbidden, "\(name) (\(role.rawValue)) may not read \(root)", details: [.object([("root", .string(root))])])
        }
    }

    /// Refuses (403 `forbidden`) any write to `root`, before a body is read.
    public func authorizeWrite(root: String) throws(LaterbaseError) {
        guard mayWrite(root) else {
            throw LaterbaseError(.forbidden, "\(name) (\(role.rawValue)) may not write to \(root)", details: [.object([("root", .string(root))])])
        }
    }

    /// Refuses (403 `forbidden`) a batch with anything it may not write: the root, or a recorded
    /// event of an origin not its own (a device). One forbidden event refuses the batch whole.
    public func authorizeWrite(_ batch: PreparedBatch) throws(LaterbaseError) {
        try authorizeWrite(root: batch.root)
        guard role == .device else { return }
        for (index, event) in batch.events.enumerated() {
            if let recorded = event.recorded, recorded.origin != origin {
                throw LaterbaseError(
                    .forbidden, "event \(index): \(name) may record only as origin \(origin ?? "?"), not \(recorded.origin)",
                    details: [.object([("root", .string(batch.root)), ("index", .integer(index)), ("origin", .string(recorded.origin))])])
            }
        }
    }
}
