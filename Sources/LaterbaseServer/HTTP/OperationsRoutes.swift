import Hummingbird
import LaterbaseCore
import LaterbaseSync
import Prometheus

/// GET /healthz, /metrics, /node, /stats and /openapi.json.
struct OperationsRoutes {
    let store: EventStore
    let writer: Writer
    let registry: PrometheusCollectorRegistry
    let ingest: String?
    let publish: String?
    let replication: Replication?
    let zap: ZAPHandler
    let gauges: ScrapeGauges
    let limits: NodeLimits
    let health: NodeHealth

    func register(on router: Router<LaterbaseRequestContext>) {
        router.on(.health) { _, _ -> Response in
            let parts = health.check()
            let failed = parts.filter { $0.failure != nil }
            guard failed.isEmpty else {
                throw LaterbaseError(
                    .unavailable, failed.map { "\($0.part): \($0.failure!)" }.joined(separator: "; "),
                    details: failed.map { .object([("part", .string($0.part)), ("reason", .string($0.failure!))]) })
            }
            return .json(JSON.object([("status", .string("ok")), ("parts", .array(parts.map { .string($0.part) }))]).bytes)
        }
        router.on(.metrics) { _, context -> Response in
            try context.caller().authorizeMetrics()
            gauges.update(store: store, peers: replication?.peers ?? [])
            var out: [UInt8] = []
            registry.emit(into: &out)
            return .json(out, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.on(.stats, reading: store) { _, context -> Response in
            try context.caller().authorizeAdmin("/stats")
            return .json(try store.statistics().json.bytes)
        }
        router.on(.openAPI) { _, context -> Response in
            _ = try context.caller()  // any principal
            return .json(PackageResources.openapi_json)
        }
        router.on(.node) { _, context -> Response in
            let caller = try context.caller()
            let body = JSON.object([
                ("replica", .string(store.replicaID)),
                ("roots", .array(store.rootNames.map { .string($0) })),
                ("ingest", ingest.map { .string($0) } ?? .null),
                ("publish", publish.map { .string($0) } ?? .null),
                ("curve_public_key", .string(zap.keyPair.publicKey)),
                ("curve", .bool(zap.curve)),
                // Who asked, and which roots it may read and write: a peer link syncs the roots it may read.
                ("caller", .object([
                    ("name", .string(caller.name)), ("role", .string(caller.role.rawValue)),
                    ("read", .array(store.rootNames.filter(caller.mayRead).map { .string($0) })),
                    ("write", .array(store.rootNames.filter(caller.mayWrite).map { .string($0) })),
                ])),
                ("peers", .array((replication?.peers ?? []).filter { caller.mayViewPeer(replica: $0.replica) }.map(\.json))),
                ("limits", limits.json),
                // This node's position in each root the caller may read: where a client that
                // follows it by `since` stands once it has everything (a token, whatever the
                // number of origins; the console shows it).
                ("positions", .object(store.rootNames.filter(caller.mayRead).compactMap { root in
                    (try? store.position(of: root)).map { (root, .string($0.description)) }
                })),
            ])
            return .json(body.bytes)
        }
    }
}

extension PeerStatus {
    /// How `/node` shows a peer link: `{"url", "replica", "reachable", "error", "pushing", "stalled": [{"root", "origin",
    /// "error", "reason"}], "positions": {root: the peer's token this node holds up to}, "in_sync": [roots],
    /// "limits": <why its smaller limits may refuse events> | null}`. No vv: peers read `/node` with
    /// every probe, and a root of 100,000 origins has a vv of a megabyte.
    var json: JSON {
        .object([
            ("url", .string(url)), ("replica", replica.map { .string($0) } ?? .null), ("reachable", .bool(reachable)),
            ("error", error.map { .string($0) } ?? .null), ("pushing", .bool(pushing)),
            ("stalled", .array(stalled.sorted { $0.key < $1.key }.flatMap { root, stalls in
                stalls.map { .object([("root", .string(root)), ("origin", .string($0.origin)), ("error", .string($0.code)), ("reason", .string($0.reason))]) }
            })),
            ("positions", .object(tokens.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("in_sync", .array(inSync.sorted().map { .string($0) })),
            ("limits", limits.map { .string($0) } ?? .null),
        ])
    }
}

/// What `/healthz` asks: each long-lived part of the node, and why it stopped if it did.
struct NodeHealth: Sendable {
    let parts: [(part: String, failure: @Sendable () -> String?)]

    func check() -> [(part: String, failure: String?)] { parts.map { ($0.part, $0.failure()) } }
}
