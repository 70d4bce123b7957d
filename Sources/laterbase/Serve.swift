import Foundation
import ArgumentParser
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Laterbase node.",
        discussion: """
            SIGTERM or SIGINT stops taking writes, writes everything queued, and exits 0: nothing \
            acknowledged is lost.

            An edge device runs the same command with --peer naming its upstream node: it records \
            locally while the upstream is unreachable and syncs both ways when it is back.
            """
    )

    @Option(help: "Data folder (the LMDB environment).")
    var data: String = "./laterbase-data"

    @Option(help: "HTTP address to listen on, HOST:PORT.")
    var http: String = "127.0.0.1:8080"

    @Option(help: "ZeroMQ PULL endpoint to bind for ingest (tcp://HOST:PORT, PORT may be *), or none.")
    var ingest: String = "tcp://127.0.0.1:5555"

    @Option(help: "ZeroMQ PUB endpoint to bind for deltas, or none.")
    var publish: String = "tcp://127.0.0.1:5556"

    @Option(name: .customLong("max-body-mib"), help: "Largest POST body and ZeroMQ ingest message, in MiB.")
    var maxBodyMiB: Int = 8

    @Option(name: .customLong("ingest-memory-mib"), help: ArgumentHelp(
        "Most memory unread ZeroMQ ingest messages may hold, all senders together, in MiB.",
        discussion: "Each sender can hold 3 messages of up to the body limit unread, so this sets how many senders are admitted at once (2048 MiB with the 8 MiB limit: 85). More are refused in the handshake and retry. Lower --max-body-mib or raise this for a large fleet."))
    var ingestMemoryMiB: Int = 2048

    @Option(name: .customLong("ingest-max-senders"), help: "Senders admitted to ZeroMQ ingest at once. Default: as many as --ingest-memory-mib allows.")
    var ingestMaxSenders: Int?

    @Option(name: .customLong("publish-hwm"), help: "Deltas queued per subscriber before ZeroMQ drops (the subscriber then catches up through the feed).")
    var publishHWM: Int32 = 10_000

    @Option(name: .customLong("peer"), help: ArgumentHelp(
        "A peer's HTTP URL, e.g. http://10.0.0.2:8080. Repeatable.",
        discussion: "Its ZeroMQ endpoints are read from its GET /node. Naming it here is enough for sync both ways: this node subscribes to its deltas, catches up through its feed, and pushes what it lacks to its ingest."))
    var peers: [String] = []

    @Option(name: .customLong("peer-probe-seconds"), help: "How often each peer link reads its peer's /node and head.")
    var peerProbeSeconds: Double = 1

    @Option(name: .customLong("replica-id"), help: "This node's origin. Default: generated once and kept in the data folder.")
    var replicaID: String?

    @Option(name: .customLong("root"), help: "A schema-less root (its aggregate is the JSON merge of data). Repeatable.")
    var roots: [String] = []

    @Option(name: .customLong("max-skew"), help: "Refuse a time or hlc more than this many seconds ahead of this node's clock.")
    var maxSkew: Double = 60

    @Option(name: .customLong("map-size-gib"), help: "Largest size of the data file, in GiB.")
    var mapSizeGiB: Int = 64

    @Option(name: .customLong("queue-capacity"), help: "Events waiting to be written before writes get 503 overloaded.")
    var queueCapacity: Int = 40_000

    @Option(name: .customLong("queue-capacity-mib"), help: "Bytes of events waiting to be written, in MiB, before writes get 503 overloaded.")
    var queueCapacityMiB: Int = 256

    @Option(name: .customLong("http-body-memory-mib"), help: "Most memory POST bodies may hold, all connections together, in MiB; a POST over it gets 503 overloaded before its body is read.")
    var httpBodyMemoryMiB: Int = 256

    @Option(name: .customLong("idle-timeout-seconds"), help: "Close an HTTP connection idle this long.")
    var idleTimeout: Double = 60

    @Option(name: .customLong("header-timeout-seconds"), help: "Close a connection whose request headers are not complete this long after their first byte.")
    var headerTimeout: Double = 10

    @Option(name: .customLong("max-connections"), help: "Most HTTP connections open at once; at the limit a new one closes the connection idle longest (new ones wait only while every connection has a request in flight).")
    var maxConnections: Int = 1024

    @Option(name: .customLong("max-live-feeds-per-principal"), help: "Most live feeds (SSE) one principal holds open at once (on a node without credentials: one address); more are answered 429.")
    var maxLiveFeedsPerPrincipal: Int = 32

    @Option(name: .customLong("max-transaction-events"), help: "Most events one write transaction takes, 10000 to 100000. Larger: fewer syncs and per-aggregate writes under load (peers converge sooner), more memory held per commit and later acknowledgments.")
    var maxTransactionEvents: Int = 20_000

    @Option(name: .customLong("max-event-bytes"), help: "The largest event in its recorded form as served, 1024 to 16777216 and 64 KiB below the body limit (CONTRACT.md v3); every replica of a deployment should share it. Larger events are refused (413) before anything is stored. Default: 1048576.")
    var maxEventBytes: Int?

    /// 1 MiB unless given, or less where the body limit needs it.
    var eventLimit: Int { maxEventBytes ?? min(1 << 20, (maxBodyMiB << 20) - (64 << 10)) }

    @Option(name: .customLong("commit-delay-ms"), help: "How long the writer lingers for more writes once it has some, in ms (bigger groups, fewer fsyncs).")
    var commitDelay: Double = 0

    @Option(help: ArgumentHelp(
        "A JSON file of principals: who may do what (CONTRACT.md, Access). SIGHUP re-reads it.",
        discussion: #"{"principals": [{"name", "role": admin|peer|device|reader|monitor, "token_sha256", "curve_public_key"?, "origin"? (device), "write"?, "read"?}]}. Without it the node is open, and refuses to listen on anything but loopback unless --insecure."#))
    var credentials: String?

    @Option(name: .customLong("curve-secret-key"), help: "A file holding this node's CURVE secret key (40 characters of Z85). Default: made once and kept in the data folder; GET /node shows the public key.")
    var curveSecretKey: String?

    @Option(name: .customLong("token-file"), help: "A file holding the bearer token this node presents to the peers it names (--peer); surrounding whitespace is ignored.")
    var tokenFile: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTP over TLS only (with --tls-key).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: "PEM certificates trusted for https:// peers, beside the system's.")
    var tlsCA: String?

    @Flag(help: "Let a node without --credentials listen on an address other than loopback (anyone who reaches it may do anything).")
    var insecure = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        guard parseAddress(http) != nil else { throw ValidationError("--http must be HOST:PORT, e.g. 127.0.0.1:8080") }
        for root in roots where !Names.isValidRoot(root) {
            throw ValidationError("'\(root)' is not a valid root name (^[a-z][a-z0-9_-]{0,63}$)")
        }
        if let replicaID, !Names.isValidOrigin(replicaID) { throw ValidationError("'\(replicaID)' is not a valid replica id") }
        guard maxSkew > 0 else { throw ValidationError("--max-skew must be positive") }
        for endpoint in [ingest, publish] where endpoint != "none" && !endpoint.hasPrefix("tcp://") && !endpoint.hasPrefix("ipc://") {
            throw ValidationError("'\(endpoint)' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or none)")
        }
        for peer in peers where !(peer.hasPrefix("http://") || peer.hasPrefix("https://")) {
            throw ValidationError("--peer takes an HTTP URL, e.g. http://10.0.0.2:8080; '\(peer)' is not one")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard peerProbeSeconds >= 0.05 else { throw ValidationError("--peer-probe-seconds must be at least 0.05") }
        guard (1...1024).contains(maxBodyMiB) else { throw ValidationError("--max-body-mib must be from 1 to 1024") }
        guard (1...1 << 20).contains(ingestMemoryMiB) else { throw ValidationError("--ingest-memory-mib must be from 1 to 1048576") }
        if let ingestMaxSenders, !(1...100_000).contains(ingestMaxSenders) { throw ValidationError("--ingest-max-senders must be from 1 to 100000") }
        guard publishHWM > 0 else { throw ValidationError("--publish-hwm must be positive") }
        guard (0...1000).contains(commitDelay) else { throw ValidationError("--commit-delay-ms must be from 0 to 1000") }
        // Not below a batch's limit (CONTRACT.md: 10,000 events), which a transaction must hold.
        guard (10_000...100_000).contains(maxTransactionEvents) else { throw ValidationError("--max-transaction-events must be from 10000 to 100000") }
        // A push or a page of one event carries it with its envelope: 64 KiB of room below the body limit.
        guard (1024...EventStore.largestEventBytes).contains(eventLimit), eventLimit <= (maxBodyMiB << 20) - (64 << 10) else {
            throw ValidationError("--max-event-bytes must be from 1024 to \(EventStore.largestEventBytes), and 64 KiB below --max-body-mib (raise that for events of a MiB or more)")
        }
        guard queueCapacity > 0, (1...65536).contains(queueCapacityMiB) else { throw ValidationError("--queue-capacity must be positive and --queue-capacity-mib from 1 to 65536") }
        guard (maxBodyMiB...1 << 20).contains(httpBodyMemoryMiB) else { throw ValidationError("--http-body-memory-mib must be at least --max-body-mib and at most 1048576") }
        guard (0.1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout-seconds must be from 0.1 to 86400") }
        guard (0.1...3_600).contains(headerTimeout) else { throw ValidationError("--header-timeout-seconds must be from 0.1 to 3600") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be from 1 to 1000000") }
        guard (1...100_000).contains(maxLiveFeedsPerPrincipal) else { throw ValidationError("--max-live-feeds-per-principal must be from 1 to 100000") }
        guard maxSkew <= 1e9, (1...1 << 20).contains(mapSizeGiB) else { throw ValidationError("--max-skew or --map-size-gib is out of range") }
    }

    func run() async throws {
        var logger = Logger(label: "laterbase")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let (host, port) = parseAddress(http)!
        var configuration = ServerConfiguration()
        configuration.dataDirectory = data
        configuration.host = host
        configuration.port = port
        configuration.replicaID = replicaID
        configuration.ingest = ingest == "none" ? nil : ingest
        configuration.publish = publish == "none" ? nil : publish
        configuration.peers = peers
        configuration.publishOptions.highWaterMark = publishHWM
        configuration.maxBodyBytes = maxBodyMiB << 20
        configuration.ingestOptions.memoryBudgetBytes = ingestMemoryMiB << 20
        configuration.ingestOptions.maxSenders = ingestMaxSenders
        configuration.peerProbeInterval = .milliseconds(Int64(peerProbeSeconds * 1000))
        configuration.store.maxSkewMilliseconds = Int64(maxSkew * 1000)
        configuration.store.mapSize = mapSizeGiB << 30
        configuration.writer.queueCapacity = queueCapacity
        configuration.writer.queueCapacityBytes = queueCapacityMiB << 20
        configuration.httpBodyMemoryBytes = httpBodyMemoryMiB << 20
        configuration.httpIdleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        configuration.httpHeaderTimeout = .milliseconds(Int64(headerTimeout * 1000))
        configuration.maxConnections = maxConnections
        configuration.maxLiveFeedsPerPrincipal = maxLiveFeedsPerPrincipal
        configuration.allowInsecure = insecure
        configuration.curveSecretKeyFile = curveSecretKey
        configuration.peerCAFile = tlsCA
        if let tlsCert, let tlsKey { configuration.tls = .init(certificateChain: tlsCert, privateKey: tlsKey) }
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("--token-file \(tokenFile): cannot read it") }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("--token-file \(tokenFile) is empty") }
            configuration.peerToken = token
        }
        if let credentials {
            do {
                configuration.access = try Access(credentialsFile: credentials)
            } catch {
                throw ValidationError("--credentials \(credentials): \(error)")
            }
        }
        configuration.writer.maxDelay = .microseconds(Int64(commitDelay * 1000))
        configuration.writer.maxTransactionEvents = maxTransactionEvents
        configuration.store.maxEventBytes = eventLimit
        let server = try LaterbaseServer(roots: Demo.roots + roots.map { .jsonMerge($0) }, configuration: configuration, logger: logger)
        try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }

    private func parseAddress(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(s[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}

