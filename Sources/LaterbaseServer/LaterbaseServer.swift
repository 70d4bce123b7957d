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
/// sockets and replication with its peers, run as one service group.
///
/// ```swift
/// let server = try LaterbaseServer(roots: [.typed(Shipments.self), .jsonMerge("notes")])
/// try await server.run()   // until SIGTERM or SIGINT
/// ```
public final class LaterbaseServer: Sendable {
    public let store: EventStore
    public let writer: Writer
    public let configuration: ServerConfiguration
    /// The Prometheus registry behind `/metrics`.
    public let registry: PrometheusCollectorRegistry
    /// The PUB socket deltas leave on, if configured.
    public let publisher: Publisher?
    /// The PULL socket edge devices and peers push to, if configured.
    public let ingest: Ingest?
    /// Sync with the configured peers, if any.
    public let replication: Replication?
    private let context: ZMQContext
    /// The node's ZAP handler: who may connect to the ZeroMQ sockets, and how many ingest senders.
    public let zap: ZAPHandler
    private let logger: Logger
    private let metrics: StoreMetrics
    private let bodies: BodyBudget
    /// The HTTP connections' rules: header timeout, longest-idle eviction, refused bodies drained.
    private let connections: ConnectionTable
    private let parsers: NIOThreadPool
    /// HTTP's TLS, when served over TLS.
    private let tls: TLSConfiguration?
    private let boundPort = Mutex<Int?>(nil)
    private let gauges: ScrapeGauges
    /// What `/node` announces, and what peers' announcements are compared with.
    public let limits: NodeLimits
    /// Wakes live feeds (SSE) when a commit is durable.
    private let commits = CommitSignal()
    private let liveFeed: LiveFeed
    private let group = Mutex<ServiceGroup?>(nil)
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
        let context = try ZMQContext()
        self.context = context
        let zap = try ZAPHandler(context: context, access: configuration.access, keyPair: keyPair, metrics: syncMetrics, logger: logger)
        self.zap = zap
        let publisher = try configuration.publish.map { endpoint throws(ZMQError) in
            try Publisher(context: context, endpoint: endpoint, zap: zap, options: configuration.publishOptions, metrics: syncMetrics)
        }
        self.publisher = publisher
        let hook = configuration.onCommit
        let commits = commits
        let writer = Writer(store: store, options: configuration.writer, metrics: metrics, logger: logger) { changes in
            hook?(changes)
            publisher?.publish(changes)
            commits.committed(changes)
        }
        liveFeed = LiveFeed(
            store: store, signal: commits, access: configuration.access,
            options: LiveFeed.Options(
                keepAlive: configuration.liveFeedKeepAlive, writeTimeout: configuration.liveFeedWriteTimeout,
                maxPerPrincipal: configuration.maxLiveFeedsPerPrincipal),
            metrics: LiveFeedMetrics(factory: factory))
        self.writer = writer
        let storeMetrics = metrics
        ingest = try configuration.ingest.map { endpoint throws(ZMQError) in
            try Ingest(
                context: context, endpoint: endpoint, zap: zap, writer: writer, publisher: publisher, maxMessageBytes: configuration.maxBodyBytes,
                metrics: syncMetrics, storeMetrics: storeMetrics,
                options: configuration.ingestOptions, logger: logger)
        }
        replication = configuration.peers.isEmpty ? nil : try Replication(
            peers: configuration.peers, writer: writer, context: context, dataDirectory: configuration.dataDirectory,
            probeInterval: configuration.peerProbeInterval, positions: configuration.peerPositions, credentials: PeerCredentials(token: configuration.peerToken, keyPair: keyPair, trustRoots: trustRoots),
            limits: limits, metrics: syncMetrics,
            logger: logger)
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
            zap: zap, gauges: gauges, limits: limits
        ).register(on: router)
        configuration.routes?(router)
        return router
    }

    /// Serves until one of `gracefulShutdownSignals` arrives or ``shutdown()`` is called; then
    /// stops taking requests, writes everything queued, and returns.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let app = Application(
            router: makeRouter(),
            server: try httpServer(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "laterbase",
                availableConnectionsDelegate: connections.limit),
            services: [
                WriterService(writer: writer), SyncService(zap: zap, ingest: ingest, replication: replication),
                CredentialsReloadService(access: configuration.access, logger: logger) { [self] in try reloadCredentials() },
            ],
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port
                self.boundPort.withLock { $0 = port }
                self.logger.info("laterbase serving", metadata: ["port": "\(port ?? 0)", "replica": "\(self.store.replicaID)", "roots": "\(self.store.rootNames)"])
            },
            logger: logger
        )
        // Services shut down in reverse order: live feeds end first, so HTTP's wait for
        // requests in flight does not wait for them.
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [app, LiveFeedService(signal: commits)], gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
        group.withLock { $0 = serviceGroup }
        defer {
            // Every socket's owner has closed it by now (the services stopped; an ingest that
            // never started closes its socket here), so this cannot hang.
            ingest?.stop()
            zap.stop()
            publisher?.close()
            context.shutdown()
            context.terminate()
            folderLock.release()
        }
        parsers.start()
        do {
            try await serviceGroup.run()
        } catch {
            try? await parsers.shutdownGracefully()
            throw error
        }
        try? await parsers.shutdownGracefully()
        logger.info("laterbase stopped")
    }

    /// HTTP/1.1, over TLS when configured.
    private func httpServer() throws -> HTTPServerBuilder {
        let connections = connections
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [connections.makeGuard()], idleTimeout: .milliseconds(Int64(configuration.httpIdleTimeout / .milliseconds(1)))))
        guard let tls else { return http1 }
        return try .tls(http1, tlsConfiguration: tls)
    }

    /// The HTTP port once listening (useful with port 0).
    public var port: Int? { boundPort.withLock { $0 } }

    /// Waits until the server listens; returns its port.
    public func waitUntilRunning() async throws -> Int {
        while true {
            if let port { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Re-reads the credentials file, as SIGHUP does: the new principals apply to every request
    /// from now on, and every live feed looks at its principal's rights again at once (one whose
    /// principal is gone, or may no longer read its root, ends). An invalid file changes nothing
    /// and is thrown.
    public func reloadCredentials() throws {
        try configuration.access.reload()
        commits.wakeAll()
    }

    /// Begins a graceful shutdown, as SIGTERM would.
    public func shutdown() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }
}
