import Metrics
import Synchronization

/// What live feeds report: how many are open, events sent, clients closed for not reading.
final class LiveFeedMetrics: Sendable {
    private let open: Gauge
    private let events: Counter
    private let slow: Counter
    private let revokedCount: Counter
    private let refusedCount: Counter
    private let openCount = Atomic<Int>(0)

    init(factory: any MetricsFactory) {
        open = Gauge(label: "laterbase_live_feeds", factory: factory)
        events = Counter(label: "laterbase_live_feed_events_total", factory: factory)
        slow = Counter(label: "laterbase_live_feeds_closed_slow_total", factory: factory)
        revokedCount = Counter(label: "laterbase_live_feeds_closed_revoked_total", factory: factory)
        refusedCount = Counter(label: "laterbase_live_feeds_refused_total", factory: factory)
        open.record(0)
    }

    func opened() { open.record(openCount.add(1, ordering: .relaxed).newValue) }
    func closed() { open.record(openCount.subtract(1, ordering: .relaxed).newValue) }
    func sent(_ n: Int) { events.increment(by: n) }
    func slowClientClosed() { slow.increment() }
    /// A reload took away the feed's principal or its read of the root.
    func revoked() { revokedCount.increment() }
    /// A caller already held its most feeds (429).
    func refused() { refusedCount.increment() }
    /// Live feeds open now.
    var current: Int { openCount.load(ordering: .relaxed) }
}
