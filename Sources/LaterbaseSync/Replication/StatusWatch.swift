import Synchronization

/// A value one thread publishes and async callers wait on until it satisfies them: each waiter
/// is a continuation, resumed by the publish that satisfies it, by its deadline, or by its task's
/// cancellation. No polling. A peer link's ``PeerStatus`` is one
/// (``EdgeDevice/sync(timeout:)`` waits on its upstream's).
final class StatusWatch<Value: Sendable>: Sendable {
    private struct Waiter {
        let condition: @Sendable (Value) -> Bool
        let continuation: CheckedContinuation<Value?, Never>
    }

    private struct State {
        var value: Value
        var waiters: [Int: Waiter] = [:]
        /// Waits begun whose waiter is not listed yet.
        var starting: Set<Int> = []
        /// Of those, the ones cancelled (their deadline passed) before they were listed.
        var gone: Set<Int> = []
        var nextID = 0
    }

    private let state: Mutex<State>

    init(_ value: Value) { state = Mutex(State(value: value)) }

    var value: Value { state.withLock { $0.value } }

    /// Changes the value; the waiters it now satisfies go on.
    func publish(_ change: (inout Value) -> Void) {
        let ready = state.withLock { state -> [(CheckedContinuation<Value?, Never>, Value)] in
            change(&state.value)
            let value = state.value
            let satisfied = state.waiters.filter { $0.value.condition(value) }
            for id in satisfied.keys { state.waiters[id] = nil }
            return satisfied.values.map { ($0.continuation, value) }
        }
        for (continuation, value) in ready { continuation.resume(returning: value) }
    }

    /// The value once `condition` holds of it (at once if it does now), or nil at `deadline`.
    func wait(until condition: @escaping @Sendable (Value) -> Bool, deadline: ContinuousClock.Instant) async -> Value? {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            state.starting.insert(state.nextID)
            return state.nextID
        }
        return await withTaskGroup(of: Value?.self) { group in
            group.addTask { [self] in
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                        let now = state.withLock { state -> Value?? in
                            state.starting.remove(id)
                            if state.gone.remove(id) != nil { return .some(nil) }
                            if condition(state.value) { return .some(state.value) }
                            state.waiters[id] = Waiter(condition: condition, continuation: continuation)
                            return nil
                        }
                        if let now { continuation.resume(returning: now) }
                    }
                } onCancel: {
                    let waiter = state.withLock { state -> Waiter? in
                        if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                        if state.starting.contains(id) { state.gone.insert(id) }  // listed next, and answered at once
                        return nil
                    }
                    waiter?.continuation.resume(returning: nil)
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
