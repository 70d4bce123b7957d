import Hummingbird
import LaterbaseCore
import Prometheus

/// GET /healthz, /metrics and /node.
struct OperationsRoutes {
    let store: EventStore
    let writer: Writer
    let registry: PrometheusCollectorRegistry

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/healthz") { _, _ -> Response in
            guard writer.isAlive else { throw LaterbaseError(.unavailable, "the writer is not running") }
            return .json(JSON.object([("status", .string("ok"))]).bytes)
        }
        router.get("/metrics") { _, _ -> Response in
            var out: [UInt8] = []
            registry.emit(into: &out)
            return .json(out, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/node") { _, _ -> Response in
            let body = JSON.object([
                ("replica", .string(store.replicaID)),
                ("roots", .array(store.rootNames.map { .string($0) })),
                ("ingest", .null),
                ("publish", .null),
            ])
            return .json(body.bytes)
        }
    }
}
