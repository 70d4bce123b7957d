import Hummingbird
import HummingbirdCore
import LaterbaseCore
import LaterbaseSync
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import HummingbirdTLS
import Prometheus
import ServiceLifecycle
import UnixSignals
import Synchronization
import ZeroMQ

/// A Laterbase node: the store, its single writer, the HTTP API, the ZeroMQ ingest and publish
/// sockets and replication with its peers, run as one service group. It is a `Service`: put it
/// in your own `ServiceGroup` beside your own services, and the group's graceful shutdown (a
/// signal, or a sibling that ends) stops it after it has written everything queued.
///
/// ```swift
/// let node = try LaterbaseServer(roots: [.typed(Shipments.self), .jsonMerge("notes")])
/// try await ServiceGroup(services: [node, yourService], gracefulShutdownSignals: [.sigterm, .sigint],
///                        logger: logger).run()
/// ```
///
/// It holds its data folder (``DataFolderLock``) from `init` until it has stopped, and runs once.
public final class LaterbaseServer: Service, Sendable {
    // The parts are the node's own (`package`: the benchmarks and tests reach them). An embedding
    // application uses the typed `write`/`aggregate`, HTTP, and the endpoints below.
    package let store: EventStore
    package let writer: Writer
    public let configuration: ServerConfiguration
    /// The Prometheus registry behind `/metrics`.
    package let registry: PrometheusCollectorRegistry
    /// The PUB socket deltas leave on, if configured.
    package let publisher: Publisher?
    /// The PULL socket edge devices and peers push to, if configured.
    package let ingest: Ingest?
    /// Sync with the configured peers, if any.
    package let replication: Replication?
    private let context: ZMQContext
    /// The node's ZAP handler: who may connect to the ZeroMQ sockets, and how many ingest senders.
    package let zap: ZAPHandler
    private let logger: Logger
    private let metrics: StoreMetrics
    private let bodies: BodyBudget
    /// The HTTP connections' rules: header timeout, longest-idle eviction, refused bodies drained.
    private let connections: ConnectionTable
    package let parsers: NIOThreadPool
    /// HTTP's TLS, when served over TLS.
    private let tls: TLSConfiguration?
    private let gauges: ScrapeGauges
    /// What `/node` announces, and what peers' announcements are compared with.
    package let limits: NodeLimits

    /// This node's replica id: the origin of the events written here.
    public var replicaID: String { store.replicaID }
    /// The ZeroMQ endpoint devices push to (with the port chosen when `*` was asked), if any.
    public var ingestEndpoint: String? { ingest?.endpoint }
    /// The ZeroMQ endpoint deltas are published on, if any.
    public var publishEndpoint: String? { publisher?.endpoint }
    /// The node's public CURVE key (`/node`'s `curve_public_key`): what its ZeroMQ sockets present
    /// when it has credentials, and what it presents to its peers.
    public var curvePublicKey: String { zap.keyPair.publicKey }
    /// Wakes live feeds (SSE) when a commit is durable.
    private let commits = CommitSignal()
    private let liveFeed: LiveFeed
    private let lifecycle = Mutex(Lifecycle.idle(shutdownRequested: false, waiters: []))
    /// The data folder's, from `init` until ``run(gracefulShutdownSignals:)`` has written
    /// everything and returned.
    private let folderLock: DataFolderLock

    /// Takes the data folder's lock, opens the store and prepares the server; nothing listens
    /// until ``run(gracefulShutdownSignals:)``.
    /// - Throws: when another node (in this process or another) holds the folder (``DataFolderLock``).
    /// - Parameters:
    ///   - roots: the application's roots.
    ///   - configuration: data folder, address and limits.
    ///   - logger: where the node logs.
    public init(roots: [RootDefinition], configuration: ServerConfiguration = ServerConfiguration(), logger: Logger = Logger(label: "laterbase")) throws {
        self.configuration = configuration
        self.logger = logger
        if !configuration.access.isEnforced {
            let exposed = configuration.nonLoopbackAddresses
            if !exposed.isEmpty && !configuration.allowInsecure {
                throw ConfigurationError(
                    "without --credentials this node would let anyone who can reach \(exposed.joined(separator: ", ")) write and read everything; "
                        + "give --credentials FILE, listen on loopback only, or pass --insecure")
            }
            logger.warning("no credentials: every caller may write and read everything (open node)", metadata: exposed.isEmpty ? [:] : ["exposed": "\(exposed)"])
        }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        factory.defaultValueHistogramBuckets = [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 20_000]
        self.registry = registry
        gauges = ScrapeGauges(registry: registry)
        let metrics = StoreMetrics(factory: factory)
        bodies = BodyBudget(capacity: configuration.httpBodyMemoryBytes, factory: factory)
        connections = ConnectionTable(
            policy: .init(
                maxConnections: configuration.maxConnections, headerTimeout: configuration.httpHeaderTimeout, maxDiscardBytes: configuration.maxBodyBytes,
                bodyStallTimeout: configuration.httpIdleTimeout),
            factory: factory, logger: logger)
        parsers = NIOThreadPool(numberOfThreads: System.coreCount)
        self.metrics = metrics
        folderLock = try DataFolderLock(directory: configuration.dataDirectory)
        var storeOptions = configuration.store
        storeOptions.maxBatchEvents = min(storeOptions.maxBatchEvents, configuration.writer.maxTransactionEvents)
        store = try EventStore(directory: configuration.dataDirectory, roots: roots, replicaID: configuration.replicaID, options: storeOptions, logger: logger)
        let syncMetrics = SyncMetrics(factory: factory)
        let limits = NodeLimits(maxEventBytes: storeOptions.maxEventBytes, maxBodyBytes: configuration.maxBodyBytes, maxBatchEvents: storeOptions.maxBatchEvents)
        self.limits = limits
        tls = try configuration.tls.map { files in
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
                let key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
                return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            } catch {
                throw ConfigurationError("cannot read the TLS certificate \(files.certificateChain) or key \(files.privateKey): \(error)")
            }
        }
        let trustRoots: [NIOSSLCertificate]
        do {
            trustRoots = try configuration.peerCAFile.map { try NIOSSLCertificate.fromPEMFile($0) } ?? []
        } catch {
            throw ConfigurationError("cannot read the CA file \(configuration.peerCAFile ?? ""): \(error)")
        }
        let keyPair = try NodeKey.load(dataDirectory: configuration.dataDirectory, secretKeyFile: configuration.curveSecretKeyFile)
        // The sockets, bound now so their endpoints (ports chosen for `*`) are known before
        // run(); no thread starts before run(). If one cannot bind (a port in use), those made
        // are closed and the context ended, so nothing of this node stays bound.
        let context = try ZMQContext()
        var zapMade: ZAPHandler?, publisherMade: Publisher?, ingestMade: Ingest?
        do {
            let zap = try ZAPHandler(context: context, access: configuration.access, keyPair: keyPair, metrics: syncMetrics, logger: logger)
            zapMade = zap
            let publisher = try configuration.publish.map { endpoint throws(ZMQError) in
                try Publisher(context: context, endpoint: endpoint, zap: zap, options: configuration.publishOptions, metrics: syncMetrics)
            }
            publisherMade = publisher
            let hook = configuration.onCommit
            let commits = commits
            let writer = Writer(store: store, options: configuration.writer, metrics: metrics, logger: logger) { changes in
                hook?(changes)
                publisher?.publish(changes)
                commits.committed(changes)
            }
            let ingest = try configuration.ingest.map { endpoint throws(ZMQError) in
                try Ingest(
                    context: context, endpoint: endpoint, zap: zap, writer: writer, publisher: publisher, maxMessageBytes: configuration.maxBodyBytes,
                    metrics: syncMetrics, storeMetrics: metrics,
                    options: configuration.ingestOptions, logger: logger)
            }
            ingestMade = ingest
            replication = configuration.peers.isEmpty ? nil : try Replication(
                peers: configuration.peers, writer: writer, context: context, dataDirectory: configuration.dataDirectory,
                probeInterval: configuration.peerProbeInterval, positions: configuration.peerPositions, credentials: PeerCredentials(token: configuration.peerToken, keyPair: keyPair, trustRoots: trustRoots),
                limits: limits, metrics: syncMetrics,
                logger: logger)
            (self.zap, self.publisher, self.writer, self.ingest) = (zap, publisher, writer, ingest)
        } catch {
            ingestMade?.discard()
            publisherMade?.discard()
            zapMade?.discard()
            context.shutdown()
            context.terminate()
            throw error
        }
        self.context = context
        liveFeed = LiveFeed(
            store: store, signal: commits, access: configuration.access,
            options: LiveFeed.Options(
                keepAlive: configuration.liveFeedKeepAlive, writeTimeout: configuration.liveFeedWriteTimeout,
                maxPerPrincipal: configuration.maxLiveFeedsPerPrincipal),
            metrics: LiveFeedMetrics(factory: factory))
    }

    /// Every long-lived part, as `/healthz` reports them: 503 naming each that stopped.
    var health: NodeHealth {
        let (writer, ingest, zap, replication, publisher) = (writer, ingest, zap, replication, publisher)
        var parts: [(part: String, failure: @Sendable () -> String?)] = [
            ("writer", { writer.isAlive ? nil : "the writer is not running" }),
            ("zap", { zap.failure }),
        ]
        if let ingest { parts.append(("ingest", { ingest.failure })) }
        if let publisher { parts.append(("publisher", { publisher.failure })) }
        if let replication { parts.append(("replication", { replication.failure })) }
        return NodeHealth(parts: parts)
    }

    /// The router with every endpoint of the contract.
    func makeRouter() -> Router<LaterbaseRequestContext> {
        let router = Router(context: LaterbaseRequestContext.self)
        router.middlewares.add(LogRequestsMiddleware(.debug))
        router.middlewares.add(ErrorMiddleware(metrics: metrics))
        router.middlewares.add(AccessMiddleware(access: configuration.access))
        EventRoutes(
            store: store, writer: writer, metrics: metrics, maxBodyBytes: configuration.maxBodyBytes, bodies: bodies, parsers: parsers, liveFeed: liveFeed
        ).register(on: router)
        AggregateRoutes(store: store, metrics: metrics).register(on: router)
        ConsoleRoutes().register(on: router)
        OperationsRoutes(
            store: store, writer: writer, registry: registry, ingest: ingest?.endpoint, publish: publisher?.endpoint, replication: replication,
            zap: zap, gauges: gauges, limits: limits, health: health
        ).register(on: router)
        configuration.routes?(router)
        return router
    }

    /// Serves until the enclosing `ServiceGroup` shuts down gracefully or ``shutdown()`` is
    /// called; then stops taking requests, writes everything queued, and returns.
    /// - Throws: why it could not serve (a port in use, say; ``waitUntilRunning()`` throws it too).
    public func run() async throws {
        try await run(gracefulShutdownSignals: [])
    }

    /// Serves alone, until one of `gracefulShutdownSignals` arrives or ``shutdown()`` is called;
    /// then stops taking requests, writes everything queued, and returns.
    public func run(gracefulShutdownSignals: [UnixSignal]) async throws {
        let serviceGroup: ServiceGroup
        do {
            serviceGroup = try makeServiceGroup(gracefulShutdownSignals)
        } catch {
            // TLS that NIO refuses: this node never runs.
            if lifecycle.withLock({ $0.isIdle }) {
                await giveBack()
                stopped(error)
            }
            throw error
        }
        let start = lifecycle.withLock { $0.starting(serviceGroup) }
        if start == .alreadyRan { throw LaterbaseError(.unavailable, "this node has run already; a node has one life (make another)") }
        guard start == .run else {  // shut down before it ran: what init took is given back
            await giveBack()
            return
        }
        parsers.start()
        var failure: (any Error)?
        do {
            try await serviceGroup.run()
        } catch {
            failure = error
        }
        try? await parsers.shutdownGracefully()
        // The folder is free before anyone waiting hears the node stopped.
        await giveBack()
        stopped(failure)
        if let failure { throw failure }
        logger.info("laterbase stopped")
    }

    /// The HTTP server and every long-lived part, in the order they start.
    private func makeServiceGroup(_ gracefulShutdownSignals: [UnixSignal]) throws -> ServiceGroup {
        let app = Application(
            router: makeRouter(),
            server: try httpServer(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "laterbase",
                availableConnectionsDelegate: connections.limit),
            services: [
                PublisherService(publisher: publisher), WriterService(writer: writer), SyncService(zap: zap, ingest: ingest, replication: replication),
                CredentialsReloadService(access: configuration.access, logger: logger) { [self] in try reloadCredentials() },
            ],
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? 0
                self.logger.info("laterbase serving", metadata: ["port": "\(port)", "replica": "\(self.store.replicaID)", "roots": "\(self.store.rootNames)"])
                let waiters = self.lifecycle.withLock { $0.listening(port: port) }
                for waiter in waiters { waiter.resume(returning: port) }
            },
            logger: logger
        )
        // Services shut down in reverse order: live feeds end first, so HTTP's wait for
        // requests in flight does not wait for them.
        return ServiceGroup(configuration: .init(
            services: [app, LiveFeedService(signal: commits)], gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
    }

    /// Gives back what `init` took: the sockets, the ZeroMQ context, the folder.
    private func giveBack() async {
        // Every socket's owner has closed it by now (the services stopped; an ingest that never
        // started closes its socket here), so this cannot hang.
        await ingest?.stop()
        await zap.stop()
        await replication?.stop()  // a node shut down before it ran: its HTTP client and loop
        await publisher?.close()
        context.shutdown()
        context.terminate()
        folderLock.release()
    }

    /// Ends the life: whoever still waits to hear the port hears why there is none.
    private func stopped(_ error: (any Error)?) {
        let waiters = lifecycle.withLock { $0.stopped() }
        let reason = error ?? LaterbaseError(.unavailable, "the node stopped before it listened")
        for waiter in waiters { waiter.resume(throwing: reason) }
    }

    /// HTTP/1.1, over TLS when configured.
    private func httpServer() throws -> HTTPServerBuilder {
        let connections = connections
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [connections.makeGuard()], idleTimeout: .milliseconds(Int64(configuration.httpIdleTimeout / .milliseconds(1)))))
        guard let tls else { return http1 }
        return try .tls(http1, tlsConfiguration: tls)
    }

    /// The HTTP port while listening (useful with port 0).
    public var port: Int? {
        lifecycle.withLock { state -> Int? in
            if case .running(let port, _, _) = state { port } else { nil }
        }
    }

    /// Waits until the server listens; returns its port.
    /// - Throws: why ``run(gracefulShutdownSignals:)`` ended without listening (a port in use,
    ///   say), or `unavailable` when the node has stopped or was shut down before it ran.
    public func waitUntilRunning() async throws -> Int {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Int, any Error>) in
            switch lifecycle.withLock({ $0.waitForPort(waiter) }) {
            case .wait: break
            case .listening(let port): waiter.resume(returning: port)
            case .over: waiter.resume(throwing: LaterbaseError(.unavailable, "the node has stopped"))
            }
        }
    }

    /// Records one event of a typed root from inside the application, as a client's POST would
    /// (checked by the root's schema, durable when this returns, published to subscribers and
    /// replicated): `payload` is the event's `data`.
    ///
    /// ```swift
    /// try await node.write(Pallets.self, aggregate: "P-1", type: "pallet.moved", version: 2, Pallets.Moved(to: "bay-4"))
    /// let pallet = try node.aggregate(Pallets.self, id: "P-1")   // Pallets.State?
    /// ```
    /// - Throws: what POST answers (`invalid_event`, `overloaded`, `storage_full`…), or
    ///   `unavailable` when the node is not running (before ``run()`` or after it returned).
    @discardableResult
    public func write<R: AggregateRoot, Payload: Encodable>(
        _ root: R.Type, aggregate: String, type: String, version: Int = 1, _ payload: Payload, time: Int64? = nil
    ) async throws(LaterbaseError) -> WriteOutcome {
        guard lifecycle.withLock({ $0.isRunning }) else {
            throw LaterbaseError(.unavailable, "the node is not running: write once run() has started, before it returns")
        }
        return try await writer.write(store.prepare(root, aggregate: aggregate, type: type, version: version, payload, time: time))
    }

    /// The aggregate's state as the root's `State`, or nil when it has no event: what
    /// `GET /a/{root}/{id}` serves, without JSON. Reads work whether or not the node runs.
    public func aggregate<R: AggregateRoot>(_ root: R.Type, id: String, asOf: Int64? = nil) throws(LaterbaseError) -> R.State? {
        try store.state(root, id: id, asOf: asOf)
    }

    /// Re-reads the credentials file, as SIGHUP does: the new principals apply to every request
    /// from now on, and every live feed looks at its principal's rights again at once (one whose
    /// principal is gone, or may no longer read its root, ends). An invalid file changes nothing
    /// and is thrown.
    public func reloadCredentials() throws {
        try configuration.access.reload()
        commits.wakeAll()
    }

    /// Begins a graceful shutdown, as SIGTERM would; before ``run(gracefulShutdownSignals:)``,
    /// makes it return at once.
    public func shutdown() async {
        let (group, waiters) = lifecycle.withLock { $0.shutdownRequested() }
        for waiter in waiters { waiter.resume(throwing: LaterbaseError(.unavailable, "the node was shut down before it ran")) }
        await group?.triggerGracefulShutdown()
    }

    /// Where the node is in its one life: idle → running (the HTTP port known once listening)
    /// → stopped. Those who wait for the port are continuations, resumed outside the lock.
    enum Lifecycle {
        case idle(shutdownRequested: Bool, waiters: [CheckedContinuation<Int, any Error>])
        /// `port` is nil until the HTTP server listens.
        case running(port: Int?, group: ServiceGroup, waiters: [CheckedContinuation<Int, any Error>])
        case stopped

        enum PortAnswer { case wait, listening(Int), over }

        var isIdle: Bool {
            if case .idle = self { true } else { false }
        }

        var isRunning: Bool {
            if case .running = self { true } else { false }
        }

        enum Start { case run, shutDownBeforeRun, alreadyRan }

        mutating func starting(_ group: ServiceGroup) -> Start {
            switch self {
            case .idle(false, let waiters):
                self = .running(port: nil, group: group, waiters: waiters)
                return .run
            case .idle(true, _):
                self = .stopped
                return .shutDownBeforeRun
            case .running, .stopped:
                return .alreadyRan
            }
        }

        mutating func listening(port: Int) -> [CheckedContinuation<Int, any Error>] {
            guard case .running(_, let group, let waiters) = self else { return [] }
            self = .running(port: port, group: group, waiters: [])
            return waiters
        }

        mutating func waitForPort(_ waiter: CheckedContinuation<Int, any Error>) -> PortAnswer {
            switch self {
            case .idle(let shutdown, var waiters):
                if shutdown { return .over }
                waiters.append(waiter)
                self = .idle(shutdownRequested: false, waiters: waiters)
                return .wait
            case .running(let port?, _, _):
                return .listening(port)
            case .running(nil, let group, var waiters):
                waiters.append(waiter)
                self = .running(port: nil, group: group, waiters: waiters)
                return .wait
            case .stopped:
                return .over
            }
        }

        /// - Returns: the group to shut down, if running, and waiters to tell it will not run.
        mutating func shutdownRequested() -> (ServiceGroup?, [CheckedContinuation<Int, any Error>]) {
            switch self {
            case .idle(_, let waiters):
                self = .idle(shutdownRequested: true, waiters: [])
                return (nil, waiters)
            case .running(_, let group, _):
                return (group, [])
            case .stopped:
                return (nil, [])
            }
        }

        mutating func stopped() -> [CheckedContinuation<Int, any Error>] {
            defer { self = .stopped }
            switch self {
            case .idle(_, let waiters), .running(_, _, let waiters): return waiters
            case .stopped: return []
            }
        }
    }
}
