import ArgumentParser
import Foundation
import Hummingbird
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import Logging
import ZeroMQ

/// Measures Laterbase against its ceilings in one run, on one disk, and prints a table.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laterbase-bench",
        abstract: "Measure Laterbase in one run: LMDB ceiling, store, HTTP, feed, aggregates.",
        discussion: "Build with -c release. HTTP load needs wrk (apt-get install wrk)."
    )

    @Option(help: "Folder for the benchmark's data (same disk as production). Removed afterwards.")
    var dir: String = "./.bench-data"

    @Option(help: "Events for the LMDB ceiling, the store run and the feed read.")
    var events: Int = 1_000_000

    @Option(help: "Seconds for each HTTP load.")
    var seconds: Int = 5

    @Flag(help: "Only the LMDB ceiling and the store runs (for profiling).")
    var storeOnly = false

    @Flag(help: "Skip the HTTP rows (the ceiling, store and sync rows still run).")
    var skipHTTP = false

    @Flag(help: "Only the LMDB ceiling, the store runs, catch-up and convergence (for profiling replication).")
    var syncOnly = false

    @Option(help: "Only this: a laterbase serve process takes this many events over ZeroMQ (messages of 100, 10,000 aggregates); report its peak anonymous RSS. 0: skip.")
    var memory: Int = 0

    @Option(help: "Only this: positions (contract v3) with a root of this many origins against one of a single origin: a one-event POST's answer and latency, a quiet feed request by token. 0: skip.")
    var positions: Int = 0

    @Flag(help: "Also measure Redis Streams (XADD, appendfsync always) and PostgreSQL (a Message DB-like table) on the same disk. Needs redis-server, redis-tools and postgresql (ops/bench.sh --peers installs them) and root (PostgreSQL runs as the postgres user).")
    var peers = false

    func run() async throws {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var report = Report()
        report.machine = Machine.describe(dir)
        if memory > 0 {
            let m = try MemoryUnderIngest.run(folder: dir + "/memory", events: memory)
            report.add("ZeroMQ ingest into a laterbase process, \(Report.format(Double(m.events))) events", m.perSecond, unit: "events/s")
            report.add("Its peak anonymous RSS (RssAnon) while ingesting", m.peakAnonymousMiB, unit: "MiB", target: 256, absolute: true, lowerIsBetter: true, note: "at the end: \(Report.format(m.finalAnonymousMiB)) MiB")
            print(report.markdown)
            return
        }

        if positions > 0 {
            try await positionRows(origins: positions, report: &report)
            print(report.markdown)
            return
        }

        let ceiling = try LMDBCeiling.run(folder: dir + "/raw", events: events)
        report.add("LMDB ceiling: raw puts, 200 B values, 1000/txn, durable", ceiling, unit: "events/s")


        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        var configuration = nodeConfiguration(folder: dir + "/node", replica: "bench-1")
        let commits = SyncBench.CommitTimes(root: "fan")
        configuration.onCommit = { commits.note($0) }
        configuration.routes = { router in
            router.post("/noop") { request, _ -> Response in
                _ = try await request.body.collect(upTo: 8 << 20)
                return Response(status: .created)
            }
        }
        let server = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes"), .jsonMerge("hot"), .jsonMerge("zmq"), .jsonMerge("fan")], configuration: configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(gracefulShutdownSignals: []) }
            let port = try await server.waitUntilRunning()

            let store = try await StoreThroughput.run(server: server, root: "notes", events: events)
            report.add("Store: 200 B JSON events, 1000/batch, 10,000 aggregates (parse, schema, dots, hlc, indexes, fold)", store, unit: "events/s", ratioTo: ceiling, target: 0.25)
            let few = try await StoreThroughput.run(server: server, root: "hot", events: events / 2, aggregates: 100)
            report.add("Store: the same on 100 aggregates", few, unit: "events/s", ratioTo: ceiling, target: 0.25)
            let typed = try await StoreThroughput.run(server: server, root: "inventory", events: events / 4)
            report.add("Store, typed fold (inventory, Codable schema)", typed, unit: "events/s", ratioTo: ceiling)
            if storeOnly {
                await server.shutdown()
                try await group.waitForAll()
                return
            }

            if syncOnly {
                try await sync(peer: server, port: port, logger: logger, report: &report)
                await server.shutdown()
                try await group.waitForAll()
                return
            }
            let single = skipHTTP ? nil : try await http(port: port, server: server, ceiling: ceiling, report: &report)

            let zmq = try SyncBench.ingest(server: server, root: "zmq", events: events / 2, aggregates: 10_000)
            report.add("ZeroMQ ingest: pre-encoded messages of 100 events, 10,000 aggregates", zmq, unit: "events/s", ratioTo: ceiling, target: 0.25)
            try await relayCost(relayed: zmq, logger: logger, report: &report)
            try await security(openSingle: single, openIngest: zmq, logger: logger, report: &report)
            let fan = try SyncBench.fanOut(server: server, commits: commits, rate: 100_000, seconds: Double(seconds), aggregates: 100)
            let fanNote = "\(Report.format(fan.ingestRate)) events/s pushed, 100 aggregates, \(fan.deltas) deltas"
            report.add("Delta fan-out p50, commit to subscriber", fan.p50 * 1000, unit: "ms", note: fanNote)
            report.add("Delta fan-out p99, commit to subscriber", fan.p99 * 1000, unit: "ms", target: 10, lowerIsBetter: true, note: fanNote)
            try await sync(peer: server, port: port, logger: logger, report: &report)

            await server.shutdown()
            try await group.waitForAll()
        }
        if peers {
            for row in try Peers.redis(folder: dir) + Peers.postgres(folder: dir) {
                report.add(row.name, row.perSecond, unit: "events/s", ratioTo: ceiling, note: row.note)
            }
        }
        print(report.markdown)
    }

    /// The positions rows: a root of `origins` origins against a root of one, on one node.
    private func positionRows(origins: Int, report: inout Report) async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let server = try LaterbaseServer(
            roots: [.jsonMerge("solo"), .jsonMerge("fleet")], configuration: nodeConfiguration(folder: dir + "/positions", replica: "bench-1"), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(gracefulShutdownSignals: []) }
            let port = try await server.waitUntilRunning()
            let (one, many) = try await PositionsBench.run(server: server, port: port, origins: origins)
            let n = Report.format(Double(origins))
            report.add("One-event POST answer, 1 origin (both roots hold \(n) events)", Double(one.postBytes), unit: "bytes")
            report.add("One-event POST answer, \(n) origins", Double(many.postBytes), unit: "bytes", target: 512, absolute: true, lowerIsBetter: true)
            report.add("One-event POST median, 1 origin", one.postMedian * 1000, unit: "ms")
            report.add("One-event POST median, \(n) origins", many.postMedian * 1000, unit: "ms", ratioTo: one.postMedian * 1000, target: 1.2, lowerIsBetter: true)
            report.add("Quiet feed request by token, request and answer, \(n) origins", Double(many.quietBytes), unit: "bytes", target: 1024, absolute: true, lowerIsBetter: true, note: "1 origin: \(one.quietBytes) bytes")
            report.add("Quiet feed request by token median, 1 origin", one.quietMedian * 1000, unit: "ms")
            report.add("Quiet feed request by token median, \(n) origins", many.quietMedian * 1000, unit: "ms", target: 1, absolute: true, lowerIsBetter: true)
            report.add("For contrast: the vv feed's head (limit=0), \(n) origins", Double(many.headBytes), unit: "bytes", note: "1 origin: \(one.headBytes) bytes")
            // Peer links: an empty replica of each root, through a proxy that counts the bytes.
            let byVV = try await PositionsBench.link(node: server, port: port, root: "solo", folder: dir + "/link-vv", positions: false, logger: logger)
            let solo = try await PositionsBench.link(node: server, port: port, root: "solo", folder: dir + "/link-solo", logger: logger)
            let fleet = try await PositionsBench.link(node: server, port: port, root: "fleet", folder: dir + "/link-fleet", logger: logger)
            report.add("Writer: \(n) events of one origin, 1,000 a batch, one at a time", one.storeRate, unit: "events/s")
            report.add("Writer: \(n) recorded events of \(n) new origins, 1,000 a batch", many.storeRate, unit: "events/s", ratioTo: one.storeRate, note: "what bounds a catch-up of that root")
            report.add("Peer link catch-up by vv (before v3), 1 origin, an empty replica", byVV.catchUp, unit: "events/s")
            report.add("Peer link catch-up by position, 1 origin", solo.catchUp, unit: "events/s", ratioTo: byVV.catchUp)
            report.add("Peer link catch-up by position, \(n) origins", fleet.catchUp, unit: "events/s", ratioTo: byVV.catchUp, target: 1)
            report.add("Peer link: a new event on the peer reaches the replica, \(n) origins", fleet.follow * 1000, unit: "ms", target: 1000, absolute: true, lowerIsBetter: true, note: "1 origin: \(Report.format(solo.follow * 1000)) ms")
            report.add("Idle peer link, HTTP bytes per minute, 1 origin", solo.idleBytesPerMinute, unit: "bytes/min", note: "by vv before v3: \(Report.format(byVV.idleBytesPerMinute))")
            report.add("Idle peer link, HTTP bytes per minute, \(n) origins", fleet.idleBytesPerMinute, unit: "bytes/min", ratioTo: solo.idleBytesPerMinute, target: 1.1, lowerIsBetter: true)
            await server.shutdown()
            try await group.waitForAll()
        }
    }

    /// The catch-up and convergence rows.
    private func sync(peer server: LaterbaseServer, port: Int, logger: Logger, report: inout Report) async throws {
        let caught = try await SyncBench.catchUp(peer: server, peerPort: port, root: "notes", folder: dir + "/replica", logger: logger)
        report.add("Catch-up: an empty replica takes \(Report.format(Double(caught.events))) events through the feed", caught.perSecond, unit: "events/s", target: 300_000, absolute: true)
        let healed = try await SyncBench.convergence(events: 100_000, root: "part", folder: dir + "/partition", logger: logger)
        report.add("Convergence: heal to identical heads, 100,000 events on each side", healed, unit: "s", target: 1, lowerIsBetter: true)
    }

    /// A node on loopback with free ports, its data in `folder`.
    private func nodeConfiguration(folder: String, replica: String) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.ingest = "tcp://127.0.0.1:*"
        configuration.publish = "tcp://127.0.0.1:*"
        configuration.dataDirectory = folder
        configuration.port = 0
        configuration.replicaID = replica
        return configuration
    }

    /// The cost of the ingest relay (contract v3's bound on unfinished messages): the same
    /// ZeroMQ ingest row against a node whose socket senders reach directly, as before v3.
    private func relayCost(relayed: Double, logger: Logger, report: inout Report) async throws {
        var configuration = nodeConfiguration(folder: dir + "/direct", replica: "bench-3")
        configuration.ingestOptions.relay = false
        let server = try LaterbaseServer(roots: [.jsonMerge("notes"), .jsonMerge("zmq")], configuration: configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(gracefulShutdownSignals: []) }
            _ = try await server.waitUntilRunning()
            let direct = try SyncBench.ingest(server: server, root: "zmq", events: events / 2, aggregates: 10_000)
            report.add("ZeroMQ ingest straight to the socket (no relay, as before v3), the same messages", direct, unit: "events/s", ratioTo: relayed, note: "ratio: to the relayed row above")
            await server.shutdown()
            try await group.waitForAll()
        }
    }

    /// The cost of security: the same single-event HTTP and ZeroMQ ingest rows against a node with
    /// credentials (a bearer token on every request; CURVE on the ingest socket), as a ratio of
    /// the open node's rows of this run.
    private func security(openSingle: Double?, openIngest: Double, logger: Logger, report: inout Report) async throws {
        let token = "bench-token-" + UUID().uuidString
        let key = try CurveKeyPair.generate()
        let credentials = try Credentials(principals: [
            Principal(name: "bench", role: .admin, tokenSHA256: SHA256.hash(Array(token.utf8)), curvePublicKey: key.publicKey),
        ])
        var configuration = nodeConfiguration(folder: dir + "/secured", replica: "bench-2")
        configuration.access = Access(path: nil, credentials: credentials)
        let server = try LaterbaseServer(roots: [.jsonMerge("notes"), .jsonMerge("zmq")], configuration: configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(gracefulShutdownSignals: []) }
            let port = try await server.waitUntilRunning()
            if let openSingle {
                var load = HTTPLoad(port: port, seconds: seconds, connections: 64)
                load.headers = ["Authorization": "Bearer \(token)"]
                let single = try load.run(path: "/e/notes", body: HTTPLoad.singleEvent, eventsPerRequest: 1)
                report.add("Credentials on: single-event POST /e with a bearer token, 64 connections", single.requestsPerSecond, unit: "events/s", ratioTo: openSingle, note: single.note + " (ratio: to the open node)")
            }
            let zmq = try SyncBench.ingest(server: server, root: "zmq", events: events / 2, aggregates: 10_000, curve: key)
            report.add("Credentials on: ZeroMQ ingest over CURVE, the same messages", zmq, unit: "events/s", ratioTo: openIngest, note: "ratio: to the open node")
            await server.shutdown()
            try await group.waitForAll()
        }
    }

    /// - Returns: the single-event POST rate, for the cost-of-security row.
    private func http(port: Int, server: LaterbaseServer, ceiling: Double, report: inout Report) async throws -> Double {
            let load = HTTPLoad(port: port, seconds: seconds, connections: 64)
            let noop = try load.run(path: "/noop", body: HTTPLoad.singleEvent, eventsPerRequest: 1)
            report.add("HTTP ceiling: no-op POST, 64 connections", noop.requestsPerSecond, unit: "req/s", note: noop.note)
            let single = try load.run(path: "/e/notes", body: HTTPLoad.singleEvent, eventsPerRequest: 1)
            report.add("HTTP: single-event POST /e, 64 connections", single.requestsPerSecond, unit: "events/s", ratioTo: noop.requestsPerSecond, target: 0.8, note: single.note)
            let hundred = try load.run(path: "/e/notes", body: HTTPLoad.hundredEvents, eventsPerRequest: 100)
            report.add("HTTP: 100-event POST /e, 64 connections", hundred.eventsPerSecond, unit: "events/s", ratioTo: ceiling, target: 0.25, note: hundred.note)

            let feed = try await FeedRead.run(port: port, root: "notes", events: events)
            report.add("Feed: GET /e NDJSON, 10,000/page, \(feed.events) events", feed.perSecond, unit: "events/s", target: 1_000_000, absolute: true)

            let aggregates = try await AggregateLatency.run(server: server, port: port)
            report.add("GET /a p50, aggregate of 10,000 events", aggregates.bigP50 * 1000, unit: "ms")
            report.add("GET /a p99, aggregate of 10,000 events", aggregates.bigP99 * 1000, unit: "ms", target: 2, lowerIsBetter: true)
            report.add("GET /a p99, aggregate of 10 events (history growth check)", aggregates.smallP99 * 1000, unit: "ms")
            report.add("Back-dated event into the middle of 10,000 (POST to ack, refold)", aggregates.backdate * 1000, unit: "ms")
            return single.requestsPerSecond
    }
}
