import Metrics

/// What the writer and the store report. Made with the server's metrics factory.
public struct StoreMetrics: Sendable {
    let eventsWritten: Counter
    let batchesWritten: Counter
    let commits: Counter
    let batchSize: Recorder
    let commitEvents: Recorder
    let commitLatency: Metrics.Timer
    let queueWait: Metrics.Timer
    let queueDepth: Gauge
    let queueBytes: Gauge
    /// Meta-page syncs the acknowledging thread ran itself, and those a following commit's
    /// data sync covered instead.
    let metaSyncs: Counter
    let metaSyncsCovered: Counter
    private let errors: [LaterbaseError.Code: Counter]
    private let reads: [Read: Counter]
    /// Where metrics made later (per root, by the store's writer) go.
    let factory: any MetricsFactory

    /// What a read served.
    public enum Read: String, Sendable, CaseIterable {
        case feed, aggregate, aggregates
    }

    /// - Parameter factory: where the metrics go; the global one by default.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        eventsWritten = Counter(label: "laterbase_events_written_total", factory: factory)
        batchesWritten = Counter(label: "laterbase_batches_written_total", factory: factory)
        commits = Counter(label: "laterbase_commits_total", factory: factory)
        batchSize = Recorder(label: "laterbase_batch_events", factory: factory)
        commitEvents = Recorder(label: "laterbase_commit_events", factory: factory)
        commitLatency = Timer(label: "laterbase_commit_seconds", factory: factory)
        queueWait = Timer(label: "laterbase_queue_wait_seconds", factory: factory)
        queueDepth = Gauge(label: "laterbase_write_queue_events", factory: factory)
        queueBytes = Gauge(label: "laterbase_write_queue_bytes", factory: factory)
        metaSyncs = Counter(label: "laterbase_meta_syncs_total", dimensions: [("by", "acknowledger")], factory: factory)
        metaSyncsCovered = Counter(label: "laterbase_meta_syncs_total", dimensions: [("by", "next_commit")], factory: factory)
        // Made once: looking a counter up in the factory on every request would cost a lock.
        errors = Dictionary(uniqueKeysWithValues: LaterbaseError.Code.contract.map {
            ($0, Counter(label: "laterbase_errors_total", dimensions: [("code", $0.rawValue)], factory: factory))
        })
        reads = Dictionary(uniqueKeysWithValues: Read.allCases.map {
            ($0, Counter(label: "laterbase_reads_total", dimensions: [("kind", $0.rawValue)], factory: factory))
        })
    }

    /// Counts a refusal by its code (an application's own code gets its counter on first use).
    public func error(_ code: LaterbaseError.Code) {
        guard let counter = errors[code] else {
            return Counter(label: "laterbase_errors_total", dimensions: [("code", code.rawValue)], factory: factory).increment()
        }
        counter.increment()
    }

    /// Counts a read of the feed or of aggregates.
    public func read(_ kind: Read) { reads[kind]?.increment() }
}
