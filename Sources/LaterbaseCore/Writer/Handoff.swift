import Foundation

/// Work handed from one thread to another, in order: the writer's commits to its acknowledging
/// thread, and acknowledged commits to the publisher's thread. The taker takes everything waiting
/// at once. Optionally bounded by weight: past the bound the oldest waiting are dropped.
public final class Handoff<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [Element] = []
    private var weight = 0
    private var closed = false
    private let maxWeight: Int?
    private let weigh: (Element) -> Int
    private let drop: (Element) -> Void

    /// - Parameters:
    ///   - maxWeight: the most weight waiting; nil: unbounded.
    ///   - weigh: an element's weight (e.g. its events).
    ///   - drop: told of each element dropped past the bound.
    public init(maxWeight: Int? = nil, weigh: @escaping (Element) -> Int = { _ in 1 }, drop: @escaping (Element) -> Void = { _ in }) {
        self.maxWeight = maxWeight
        self.weigh = weigh
        self.drop = drop
    }

    /// Hands `element` over; ignored once closed.
    public func put(_ element: Element) {
        let w = maxWeight == nil ? 0 : weigh(element)
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return }
        if let maxWeight, weight + w > maxWeight {
            var n = 0
            while n < pending.count && weight + w > maxWeight {
                weight -= weigh(pending[n])
                drop(pending[n])
                n += 1
            }
            pending.removeFirst(n)
        }
        pending.append(element)
        weight += w
        condition.signal()
    }

    /// Everything waiting, at least one element; nil once closed and empty.
    public func takeAll() -> [Element]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !closed { condition.wait() }
        if pending.isEmpty { return nil }
        defer {
            pending = []
            weight = 0
        }
        return pending
    }

    /// Takes nothing more; what is waiting is still handed out.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
