import AsyncHTTPClient
import LaterbaseCore
import Logging
import NIOPosix
import NIOSSL
import ZeroMQ

/// Sync with every peer this node names, one ``PeerLink`` (and thread) per peer.
public final class Replication: Sendable {
    private let links: [PeerLink]
    private let http: HTTPClient
    /// The peer links' HTTP client has an event loop of its own: what runs in its futures (a
    /// fork's reconciliation reads the store and may wait for room in the write queue) never
    /// holds up the loops that serve this node's HTTP API.
    private let loop: MultiThreadedEventLoopGroup

    /// - Parameters:
    ///   - peers: the peers' HTTP URLs, e.g. `http://10.0.0.2:8080`; everything else is discovered
    ///     from their `GET /node`.
    ///   - dataDirectory: where each peer's acknowledged head is kept (`peers/<replica>.json`).
    ///   - probeInterval: how often each link reads its peer's `/node` and, per root, its feed
    ///     after this node's token (or head).
    ///   - positions: whether links follow peers by position (contract v3) or by vv only.
    ///   - credentials: what this node presents to its peers (a token, its CURVE key pair).
    public init(
        peers: [String], writer: Writer, context: ZMQContext, dataDirectory: String, probeInterval: Duration = .seconds(1), positions: Bool = true,
        credentials: PeerCredentials = PeerCredentials(), limits: NodeLimits? = nil, metrics: SyncMetrics, logger: Logger
    ) throws {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(10))
        // A peer's answer is input: no redirect is followed (a peer URL names the node itself).
        configuration.redirectConfiguration = .disallow
        // https:// peers: verified against the system's roots and the ones given (--tls-ca).
        var tls = TLSConfiguration.makeClientConfiguration()
        if !credentials.trustRoots.isEmpty { tls.additionalTrustRoots = [.certificates(credentials.trustRoots)] }
        configuration.tlsConfiguration = tls
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let http = HTTPClient(eventLoopGroupProvider: .shared(loop), configuration: configuration)
        self.loop = loop
        self.http = http
        var options = PeerLink.Options()
        options.machine.probeInterval = probeInterval
        options.machine.positions = positions
        options.limits = limits
        let queued = QueuedHeads()
        do {
            links = try peers.map { url in
                let client = PeerClient(url: url, http: http, token: credentials.token, replica: writer.store.replicaID)
                return try PeerLink(
                    client: client, store: writer.store, writer: writer, queued: queued, context: context, keyPair: credentials.keyPair,
                    metrics: metrics.peer(client.url),
                    dataDirectory: dataDirectory, options: options, logger: logger)
            }
        } catch {
            try? http.syncShutdown()
            try? loop.syncShutdownGracefully()
            throw error
        }
    }

    /// Starts every link's thread.
    public func start() { for link in links { link.start() } }

    /// The first link whose thread ended without being asked to, and why; nil while all run.
    public var failure: String? {
        links.lazy.compactMap { link in link.failure.map { "the link to \(link.client.url) stopped: \($0)" } }.first
    }

    /// Stops every link (each saves what its peer acknowledged) and the HTTP client, without
    /// blocking a thread.
    public func stop() async {
        for link in links { await link.stop() }
        try? await http.shutdown()
        try? await loop.shutdownGracefully()
    }

    /// What each link knows of its peer.
    public var peers: [PeerStatus] { links.map(\.currentStatus) }

    /// What the link to peer `index` knows once `condition` holds of it (at once if it does now),
    /// or nil at `deadline`: awaited, not polled.
    public func status(ofPeer index: Int, until condition: @escaping @Sendable (PeerStatus) -> Bool, deadline: ContinuousClock.Instant) async -> PeerStatus? {
        await links[index].status.wait(until: condition, deadline: deadline)
    }

    /// Asks every link to probe its peer now.
    public func probeNow() { for link in links { link.requestProbe() } }
}
