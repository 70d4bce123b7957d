import Metrics
import Synchronization

/// The bytes of POST bodies the node holds at once, all connections together.
///
/// A body is read whole before it is parsed, and the parse and the prepared batch hold about as
/// much again until the write is acknowledged; without a bound, 500 connections sending 8 MiB
/// bodies made a node hold 7 GiB and answer `/healthz` in 7 s. A request reserves its declared
/// length (or the body limit, for a chunked body) before reading, and releases it once answered;
/// when the budget is spent it is answered 503 `overloaded` at once, its body unread (the server
/// drains it), and retries.
final class BodyBudget: Sendable {
    /// Most bytes reserved at once.
    let capacity: Int
    private let reserved = Atomic<Int>(0)
    private let gauge: Gauge

    init(capacity: Int, factory: any MetricsFactory) {
        self.capacity = capacity
        gauge = Gauge(label: "laterbase_http_body_bytes", factory: factory)
    }

    /// Reserves `bytes` if they fit. A request alone may take more than the capacity, so no body
    /// within the body limit is refused forever.
    func reserve(_ bytes: Int) -> Bool {
        var current = reserved.load(ordering: .relaxed)
        while true {
            guard current == 0 || current + bytes <= capacity else { return false }
            let (exchanged, original) = reserved.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged {
                gauge.record(current + bytes)
                return true
            }
            current = original
        }
    }

    func release(_ bytes: Int) {
        let now = reserved.subtract(bytes, ordering: .relaxed).newValue
        gauge.record(now)
    }
}
