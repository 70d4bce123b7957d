import LaterbaseCore
import LaterbaseSync
import Prometheus

/// Gauges read when `/metrics` is scraped rather than kept up to date on the write path: the
/// map's fill, the reader table, per-root sizes and how far each peer and this node lag each
/// other, so an operator sees a disk filling or a replica falling behind before it matters.
struct ScrapeGauges: Sendable {
    let registry: PrometheusCollectorRegistry

    func update(store: EventStore, peers: [PeerStatus]) {
        guard let stats = try? store.statistics() else { return }
        let e = stats.environment
        registry.makeGauge(name: "laterbase_map_size_bytes", help: "Largest size the data file may grow to (--map-size-gib).").set(Double(e.mapSize))
        registry.makeGauge(name: "laterbase_map_used_bytes", help: "Bytes of the data file in use (its high-water mark).").set(Double(e.usedBytes))
        registry.makeGauge(name: "laterbase_map_fill_ratio", help: "Used over size of the map; at 1 writes fail with storage_full.").set(e.fill)
        registry.makeGauge(name: "laterbase_readers_in_use", help: "LMDB reader slots holding a snapshot now, all processes.").set(Double(e.readersInUse))
        registry.makeGauge(name: "laterbase_readers_max", help: "LMDB reader slots.").set(Double(e.maxReaders))
        var heads: [String: VersionVector] = [:]
        for r in stats.roots {
            let labels = [("root", r.name)]
            registry.makeGauge(name: "laterbase_root_events", labels: labels, help: "Events stored in the root.").set(Double(r.events))
            registry.makeGauge(name: "laterbase_root_origins", labels: labels, help: "Origins that recorded the root's events.").set(Double(r.origins))
            registry.makeGauge(name: "laterbase_root_aggregates", labels: labels, help: "Aggregates of the root.").set(Double(r.aggregates))
            registry.makeGauge(name: "laterbase_root_bytes", labels: labels, help: "Bytes of the pages the root's databases take.").set(Double(r.bytes))
            heads[r.name] = r.head
        }
        for peer in peers {
            for root in peer.roots {
                guard let ours = heads[root] else { continue }
                let theirs = peer.peerHeads[root] ?? VersionVector()
                registry.makeGauge(
                    name: "laterbase_sync_lag_events", labels: [("peer", peer.url), ("root", root), ("direction", "pull")],
                    help: "Events one side holds that the other lacks, as last seen: pull, the peer's that this node lacks; push, this node's that the peer lacks."
                ).set(Double(Self.lacking(ours, theirs)))
                registry.makeGauge(
                    name: "laterbase_sync_lag_events", labels: [("peer", peer.url), ("root", root), ("direction", "push")],
                    help: "Events one side holds that the other lacks, as last seen: pull, the peer's that this node lacks; push, this node's that the peer lacks."
                ).set(Double(Self.lacking(theirs, ours)))
            }
        }
    }

    /// Events `other` holds that `vv` lacks.
    static func lacking(_ vv: VersionVector, _ other: VersionVector) -> Int {
        other.entries.reduce(0) { $0 + Int($1.value - min($1.value, vv[$1.key])) }
    }
}
