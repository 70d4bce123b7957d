import LaterbaseCore
import Synchronization

/// Tells live feeds that a root changed. The writer's acknowledging thread calls
/// ``committed(_:)`` once a commit is durable; a live feed reads the root's version, reads the
/// feed, and when it has sent everything waits for a version past the one it read, so no commit
/// between its read and its wait is missed. Nothing is queued per client: a live feed reads what
/// it sends from the store, so a client costs one page of memory whatever it lags.
///
/// With no live feed open a commit costs one lock and a counter per root it changed.
final class CommitSignal: Sendable {
    private struct Waiter {
        let root: String
        let continuation: CheckedContinuation<Bool, Never>
        /// Ends the wait at its timeout; cancelled when the wait ends otherwise, so a woken
        /// wait leaves no sleeping task behind.
        var timer: Task<Void, Never>?

        func resume(_ value: Bool) {
            timer?.cancel()
            continuation.resume(returning: value)
        }
    }

    private struct State {
        var versions: [String: UInt64] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextID = 0
        var closed = false
    }

    private let state = Mutex(State())

    /// A commit became durable: wakes the live feeds of the roots it changed.
    func committed(_ changes: CommittedChanges) {
        let woken = state.withLock { s -> [Waiter] in
            for change in changes.roots { s.versions[change.root, default: 0] &+= 1 }
            guard !s.waiters.isEmpty else { return [] }
            var woken: [Waiter] = []
            for (id, waiter) in s.waiters where changes.roots.contains(where: { $0.root == waiter.root }) {
                woken.append(waiter)
                s.waiters[id] = nil
            }
            return woken
        }
        for w in woken { w.resume(true) }
    }

    /// The root's version now: read it before reading the feed.
    func version(of root: String) -> UInt64 { state.withLock { $0.versions[root, default: 0] } }

    /// Whether the node is shutting down (live feeds end).
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Waits until the root's version passes `version` (true), or `timeout` passes, the node
    /// shuts down or the task is cancelled (false).
    func wait(root: String, after version: UInt64, timeout: Duration) async -> Bool {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    if s.closed { return false }
                    if s.versions[root, default: 0] != version { return true }
                    s.waiters[id] = Waiter(root: root, continuation: c)
                    return nil
                }
                if let now { return c.resume(returning: now) }
                let timer = Task { [weak self] in
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    self?.resume(id, false)
                }
                // The wait may have ended already (woken, closed, cancelled): then stop the timer.
                let registered = state.withLock { s -> Bool in
                    guard s.waiters[id] != nil else { return false }
                    s.waiters[id]!.timer = timer
                    return true
                }
                if !registered { timer.cancel() }
            }
        } onCancel: {
            resume(id, false)
        }
    }

    /// Wakes every waiting live feed as a commit would (after a credentials reload: each looks
    /// at its principal's rights again before it reads on).
    func wakeAll() {
        let all = state.withLock { s -> [Waiter] in
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for w in all { w.resume(true) }
    }

    /// Ends every live feed: their waits return false and they finish their responses (graceful
    /// shutdown, so HTTP's wait for requests in flight ends).
    func close() {
        let all = state.withLock { s -> [Waiter] in
            s.closed = true
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for w in all { w.resume(false) }
    }

    private func resume(_ id: Int, _ value: Bool) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(value)
    }
}
