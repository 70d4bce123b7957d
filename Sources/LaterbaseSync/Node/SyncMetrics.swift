import LaterbaseCore
import Metrics

/// What the ZeroMQ ingest, the publisher and replication report on /metrics.
public struct SyncMetrics: Sendable {
    let ingestMessages: Counter
    let ingestEvents: Counter
    let ingestWaits: Counter
    private let ingestRefused: [LaterbaseError.Code: Counter]
    let deltasPublished: Counter
    let eventsPublished: Counter
    let rejectionsPublished: Counter
    let deltasDropped: Counter
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        ingestMessages = Counter(label: "laterbase_ingest_messages_total", factory: factory)
        ingestEvents = Counter(label: "laterbase_ingest_events_total", factory: factory)
        ingestWaits = Counter(label: "laterbase_ingest_backpressure_waits_total", factory: factory)
        ingestRefused = Dictionary(uniqueKeysWithValues: LaterbaseError.Code.contract.map {
            ($0, Counter(label: "laterbase_ingest_refused_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        deltasPublished = Counter(label: "laterbase_deltas_published_total", factory: factory)
        eventsPublished = Counter(label: "laterbase_events_published_total", factory: factory)
        rejectionsPublished = Counter(label: "laterbase_rejections_published_total", factory: factory)
        deltasDropped = Counter(label: "laterbase_deltas_dropped_total", factory: factory)
    }

    func refused(_ code: LaterbaseError.Code) {
        guard let counter = ingestRefused[code] else {
            return Counter(label: "laterbase_ingest_refused_total", dimensions: [("reason", code.rawValue)], factory: factory).increment()
        }
        counter.increment()
    }

    /// Counters for one peer, labelled with its URL.
    func peer(_ url: String) -> PeerMetrics { PeerMetrics(url: url, factory: factory) }
}

/// Replication counters for one peer.
struct PeerMetrics: Sendable {
    let eventsSent: Counter
    let eventsReceived: Counter
    let catchUps: Counter
    let gaps: Counter
    let resends: Counter
    let refusals: Counter
    let connected: Gauge
    /// For the link's own relay (``IngressRelay``).
    let factory: any MetricsFactory

    init(url: String, factory: any MetricsFactory) {
        self.factory = factory
        let d = [("peer", url)]
        eventsSent = Counter(label: "laterbase_sync_events_sent_total", dimensions: d, factory: factory)
        eventsReceived = Counter(label: "laterbase_sync_events_received_total", dimensions: d, factory: factory)
        catchUps = Counter(label: "laterbase_sync_catchups_total", dimensions: d, factory: factory)
        gaps = Counter(label: "laterbase_sync_gaps_total", dimensions: d, factory: factory)
        resends = Counter(label: "laterbase_sync_resends_total", dimensions: d, factory: factory)
        refusals = Counter(label: "laterbase_sync_refusals_total", dimensions: d, factory: factory)
        connected = Gauge(label: "laterbase_sync_peer_up", dimensions: d, factory: factory)
    }
}
