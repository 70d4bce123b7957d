/// Work handed to a thread the runtime owns, in order: batches to the writer, commits to the
/// acknowledger, acknowledged commits to the publisher. One type for all of them; what differs is
/// the bound and what happens past it:
/// - unbounded (the acknowledger: the writer never waits for it);
/// - bounded, refusing or making the producer wait for room (the write queue: HTTP hears
///   `overloaded`, the ZeroMQ ingest stops reading its socket);
/// - bounded, dropping the oldest (the publisher: a subscriber that falls behind catches up by
///   its token, so the newest deltas matter most).
///
/// An empty queue takes any one element, however heavy: an element larger than the bound still
/// goes through alone.
public final class WorkQueue<Element>: Sendable {
    /// What is waiting, or a bound on it: the elements' weights (events, say) and bytes.
    public struct Load: Sendable, Equatable {
        public var weight: Int
        public var bytes: Int
        public init(weight: Int, bytes: Int = 0) {
            self.weight = weight
            self.bytes = bytes
        }
        public static var zero: Load { Load(weight: 0) }
    }

    /// What a bounded queue does with an element that does not fit.
    public enum WhenFull: Sendable {
        /// Refuse it (``put(_:)`` says ``Refusal/full``), or wait for room (``putWaitingForRoom(_:)``).
        case refuse
        /// Drop the oldest waiting until it fits; `dropped` is told of each (under the lock: it
        /// must not block).
        case dropOldest(dropped: @Sendable (Element) -> Void)
    }

    /// Why an element was not queued.
    public enum Refusal: Error, Sendable, Equatable {
        case full
        case closed
    }

    private struct State {
        var items: [Element] = []
        var load = Load.zero
        var closed = false
    }

    private let state = ThreadLock(State())
    private let limit: Load?
    private let weigh: @Sendable (Element) -> Load
    private let whenFull: WhenFull

    /// - Parameters:
    ///   - limit: the most load waiting; nil: unbounded.
    ///   - weigh: an element's load (each counts 1 by default).
    ///   - whenFull: refuse (or wait), or drop the oldest.
    public init(limit: Load? = nil, weigh: @escaping @Sendable (Element) -> Load = { _ in Load(weight: 1) }, whenFull: WhenFull = .refuse) {
        self.limit = limit
        self.weigh = weigh
        self.whenFull = whenFull
    }

    /// Queues `element` without waiting.
    /// - Throws: ``Refusal/closed`` once closed; ``Refusal/full`` when a refusing queue is full.
    public func put(_ element: Element) throws(Refusal) {
        let load = weigh(element)
        try state.change { state throws(Refusal) in
            guard !state.closed else { throw .closed }
            if !fits(load, state) {
                guard case .dropOldest(let dropped) = whenFull else { throw .full }
                var n = 0
                while n < state.items.count && !fits(load, state, after: n) {
                    state.load = state.load - weigh(state.items[n])
                    dropped(state.items[n])
                    n += 1
                }
                state.items.removeFirst(n)
            }
            state.items.append(element)
            state.load = state.load + load
        }
    }

    /// Queues `element`, blocking this thread while a refusing queue is full: backpressure for a
    /// producer on a thread of its own (the ZeroMQ ingest, a peer link).
    /// - Returns: whether it had to wait.
    /// - Throws: ``Refusal/closed`` once closed.
    @available(*, noasync, message: "blocks while the queue is full; async producers call put(_:) and hear full")
    @discardableResult
    public func putWaitingForRoom(_ element: Element) throws(Refusal) -> Bool {
        let load = weigh(element)
        var waited = false
        let queued = state.wait(
            until: { state in
                if state.closed || fits(load, state) { return true }
                waited = true
                return false
            }, wakes: true
        ) { state, _ -> Bool in
            guard !state.closed else { return false }
            state.items.append(element)
            state.load = state.load + load
            return true
        }
        guard queued else { throw .closed }
        return waited
    }

    /// Waits for work, blocking this thread; takes elements up to `maxWeight` of weight (at least
    /// one), lingering up to `linger` for more while less is waiting.
    /// - Returns: nil once closed and empty.
    @available(*, noasync, message: "the taker is a thread of the runtime's own")
    public func take(maxWeight: Int = .max, linger: Duration = .zero) -> [Element]? {
        let lingers = state.wait(until: { !$0.items.isEmpty || $0.closed }) { state, _ -> Bool? in
            state.items.isEmpty ? nil : !state.closed && linger > .zero && state.load.weight < maxWeight
        }
        guard let lingers else { return nil }
        if lingers {
            state.wait(until: { $0.closed || $0.load.weight >= maxWeight }, deadline: .now + linger) { _, _ in }
        }
        return state.change { state -> [Element] in
            var n = 0
            var load = Load.zero
            while n < state.items.count {
                let weight = weigh(state.items[n])
                guard n == 0 || load.weight + weight.weight <= maxWeight else { break }
                load = load + weight
                n += 1
            }
            state.load = state.load - load
            if n == state.items.count {
                defer { state.items = [] }
                return state.items
            }
            defer { state.items.removeFirst(n) }
            return Array(state.items.prefix(n))
        }
    }

    /// Takes nothing more; what is waiting is still handed out.
    public func close() {
        state.change { $0.closed = true }
    }

    /// What is waiting.
    public var load: Load { state.withLock { $0.load } }

    /// Whether `load` more fits beside what is waiting (but the first `dropped`, which are about to
    /// go): anything fits an empty or unbounded queue.
    private func fits(_ load: Load, _ state: borrowing State, after dropped: Int = 0) -> Bool {
        guard let limit, state.items.count > dropped else { return true }
        return state.load.weight + load.weight <= limit.weight && state.load.bytes + load.bytes <= limit.bytes
    }
}

extension WorkQueue.Load {
    static func + (a: Self, b: Self) -> Self { Self(weight: a.weight + b.weight, bytes: a.bytes + b.bytes) }
    static func - (a: Self, b: Self) -> Self { Self(weight: a.weight - b.weight, bytes: a.bytes - b.bytes) }
}
