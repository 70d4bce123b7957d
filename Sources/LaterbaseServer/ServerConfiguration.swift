import Foundation
import Hummingbird
import LaterbaseCore
import LaterbaseSync
import ZeroMQ
import Logging

/// How a Laterbase node is set up: where it keeps data, where it listens, and its limits.
public struct ServerConfiguration: Sendable {
    /// The data folder (the LMDB environment).
    public var dataDirectory: String = "./laterbase-data"
    /// Host to bind HTTP on. Keep the default loopback unless the network is trusted.
    public var host: String = "127.0.0.1"
    /// HTTP port; 0 picks a free one (see ``LaterbaseServer/port``).
    public var port: Int = 8080
    /// This node's origin; by default the one kept in the data folder, or a new one.
    public var replicaID: String? = nil
    /// Largest POST body and ZeroMQ ingest message, in bytes.
    public var maxBodyBytes: Int = 8 << 20
    /// Most bytes of POST bodies held at once, all connections together; a request over it is
    /// answered 503 `overloaded` before its body is read.
    public var httpBodyMemoryBytes: Int = 256 << 20
    /// An HTTP connection with no request in flight for this long is closed, and so is one
    /// whose request body sends nothing for this long.
    public var httpIdleTimeout: Duration = .seconds(60)
    /// Most HTTP connections open at once. At the limit a new connection closes the one idle
    /// longest (no request in flight); only when none is idle do new ones wait in the backlog.
    public var maxConnections: Int = 1024
    /// A request whose headers are not complete this long after its first byte is closed.
    public var httpHeaderTimeout: Duration = .seconds(10)
    /// Store limits: map size, skew, batch size, checkpoints.
    public var store = EventStore.Options()
    /// Group-commit settings.
    public var writer = Writer.Options()
    /// ZeroMQ PULL endpoint the node binds for ingest (`tcp://HOST:*` picks a free port); nil for none.
    public var ingest: String? = "tcp://127.0.0.1:5555"
    /// ZeroMQ PUB endpoint the node binds for deltas; nil for none.
    public var publish: String? = "tcp://127.0.0.1:5556"
    /// Peers to sync with, by HTTP URL (`http://host:port`); their ZeroMQ endpoints come from
    /// their `GET /node`. Naming a peer on one side is enough for sync both ways.
    public var peers: [String] = []
    /// How often each peer link reads its peer's `/node` and head (and so notices what it lacks
    /// when no delta told it).
    public var peerProbeInterval: Duration = .seconds(1)
    /// Whether peer links follow peers by position (contract v3); false: by vv only, as before
    /// v3 (the benchmark's baseline in the same run; no command-line flag).
    public var peerPositions = true
    /// Ingest socket limits.
    public var ingestOptions = Ingest.Options()
    /// Publish socket limits (the high-water mark).
    public var publishOptions = Publisher.Options()
    /// Live feeds (SSE): a comment line after this long without events, so proxies keep the
    /// connection open (CONTRACT.md: at least every 15 s).
    public var liveFeedKeepAlive: Duration = .seconds(10)
    /// Live feeds: a client that takes nothing for this long is closed (it resumes from its
    /// last event id).
    public var liveFeedWriteTimeout: Duration = .seconds(30)
    /// Live feeds one principal (on an open node: one address) may hold open at once; more are
    /// answered 429 `too_many_requests`. Each feed reads the store on every commit of its root.
    public var maxLiveFeedsPerPrincipal = 32
    /// Called on the writer thread after each commit, in commit order, with the events it added
    /// per root and the root's head: the seam for publishing deltas. Must not block.
    public var onCommit: (@Sendable (CommittedChanges) -> Void)? = nil
    /// Adds the application's own routes beside the contract's (they must not clash with those
    /// of `Route.all`: `/e`, `/a`, `/h`, `/console`, `/healthz`, `/metrics`, `/node`, `/stats`,
    /// `/openapi.json`).
    /// Their requests are authenticated like the contract's (``LaterbaseRequestContext/principal``);
    /// what each principal may do there is theirs to check.
    public var routes: (@Sendable (Router<LaterbaseRequestContext>) -> Void)? = nil
    /// Who may do what: open (every caller may do everything, as in v1) unless built from a
    /// credentials file (``Access/init(credentialsFile:)``), which SIGHUP re-reads.
    public var access: Access = .open()
    /// Lets an open node (no credentials) listen on an address other than loopback. Without it,
    /// such a node refuses to start: anyone who can reach it could write and read everything.
    public var allowInsecure = false
    /// A file holding the node's CURVE secret key (40 characters of Z85); by default one made once
    /// and kept in the data folder.
    public var curveSecretKeyFile: String? = nil
    /// The bearer token this node presents to the peers it names (`--token-file`).
    public var peerToken: String? = nil
    /// HTTP over TLS only, from PEM files (`--tls-cert`, `--tls-key`); nil for plain HTTP.
    public var tls: TLSFiles? = nil
    /// A PEM file of certificates trusted for `https://` peers, beside the system's (`--tls-ca`).
    public var peerCAFile: String? = nil

    /// The PEM files HTTP is served over TLS with.
    public struct TLSFiles: Sendable {
        /// The certificate chain, leaf first.
        public var certificateChain: String
        public var privateKey: String
        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    public init() {}
}

extension ServerConfiguration {
    /// The addresses this node would listen on that are not loopback (HTTP, ingest, publish).
    public var nonLoopbackAddresses: [String] {
        var out: [String] = []
        if !Self.isLoopback(host: host) { out.append("http \(host):\(port)") }
        for (name, endpoint) in [("ingest", ingest), ("publish", publish)] {
            guard let endpoint, endpoint.hasPrefix("tcp://") else { continue }  // ipc:// is a local file
            // One ZeroMQ will not bind is not loopback either: it is refused here, as it was.
            if !(TCPEndpoint(endpoint).map { Self.isLoopback(host: $0.host) } ?? false) { out.append("\(name) \(endpoint)") }
        }
        return out
    }

    /// Whether `host` is a loopback address: 127.0.0.0/8, `::1` (or `::ffff:127.x.y.z`), or
    /// `localhost`. Only addresses count, parsed as addresses: `127.example.com` is a name that
    /// resolves wherever its owner likes, not loopback.
    static func isLoopback(host: String) -> Bool {
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if h == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, h, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, h, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }  // ::1
        // ::ffff:127.x.y.z, an IPv4 loopback address in IPv6 form.
        return bytes[..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
    }
}

/// A configuration the node refuses to start with.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
