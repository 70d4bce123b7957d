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
        gauge("laterbase_map_size_bytes", "Largest size the data file may grow to (--map-size-gib).").set(Double(e.mapSize))
        gauge("laterbase_map_used_bytes", "Bytes of the data file in use (its high-water mark).").set(Double(e.usedBytes))
        gauge("laterbase_map_fill_ratio", "Used over size of the map; at 1 writes fail with storage_full.").set(e.fill)
        gauge("laterbase_readers_in_use", "LMDB reader slots holding a snapshot now, all processes.").set(Double(e.readersInUse))
        gauge("laterbase_readers_max", "LMDB reader slots.").set(Double(e.maxReaders))
        var heads: [String: VersionVector] = [:]
        for r in stats.roots {
            let labels = [("root", r.name)]
            gauge("laterbase_root_events", "Events stored in the root.", labels: labels).set(Double(r.events))
            gauge("laterbase_root_origins", "Origins that recorded the root's events.", labels: labels).set(Double(r.origins))
            gauge("laterbase_root_aggregates", "Aggregates of the root.", labels: labels).set(Double(r.aggregates))
            gauge("laterbase_root_bytes", "Bytes of the pages the root's databases take.", labels: labels).set(Double(r.bytes))
            heads[r.name] = r.head
        }
        for peer in peers {
            for root in peer.roots {
                guard let ours = heads[root] else { continue }
                let theirs = peer.peerHeads[root] ?? VersionVector()
                for (direction, lag) in [("pull", ours.count(missingFrom: theirs)), ("push", theirs.count(missingFrom: ours))] {
                    gauge("laterbase_sync_lag_events", Self.lagHelp, labels: [("peer", peer.url), ("root", root), ("direction", direction)]).set(Double(lag))
                }
            }
        }
    }

    static let lagHelp = "Events one side holds that the other lacks, as last seen: pull, the peer's that this node lacks; push, this node's that the peer lacks."

    private func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
