import Blocking
import Foundation
import LaterbaseCore
import Synchronization

/// A thread that owns ZeroMQ sockets (they are not thread-safe, so each belongs to one thread),
/// with the stop flag its loop looks at between short polls, and what became of it: a loop that
/// returns when nobody asked it to stop has failed, and says so (``failure``) to `/healthz`.
final class SocketThread: Sendable {
    private enum State {
        case idle
        case running(failure: String?)
        /// Asked to stop; those awaiting the end (``stop()`` async) are resumed when it comes.
        case stopping(waiters: [CheckedContinuation<Void, Never>])
        /// The loop returned; `failure` is why when nobody had asked it to stop.
        case ended(failure: String?)
    }

    private let name: String
    /// A ``Blocking/ThreadLock`` rather than a `Mutex` for one caller: a peer link's thread
    /// stopping its relay sleeps on it until the loop has returned (``stop()``, `noasync`).
    private let state = ThreadLock(State.idle)
    /// The loop's flag, read between polls without the lock.
    private let stopping = Atomic<Bool>(false)

    init(name: String) { self.name = name }

    /// Whether ``stop()`` was called; the loop should return soon after.
    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Runs `body` on a new thread, once; `body` closes the sockets it owns before returning.
    func start(_ body: @escaping @Sendable () -> Void) {
        let starts = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(failure: nil)
            return true
        }
        guard starts else { return }
        let thread = Thread { [self] in
            body()
            let waiters = state.change { state -> [CheckedContinuation<Void, Never>] in
                switch state {
                case .running(let failure):
                    state = .ended(failure: failure ?? "its loop returned")
                    return []
                case .stopping(let waiters):
                    state = .ended(failure: nil)
                    return waiters
                case .idle, .ended:
                    state = .ended(failure: nil)
                    return []
                }
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = name
        thread.start()
    }

    /// Says why the loop is about to return (from the loop's thread).
    func fail(_ reason: String) {
        state.withLock { if case .running = $0 { $0 = .running(failure: reason) } }
    }

    /// Why the loop ended without being asked to, or nil (not started, running, or stopped).
    var failure: String? {
        state.withLock { state -> String? in
            if case .ended(let failure) = state { failure } else { nil }
        }
    }

    /// Asks the loop to stop and waits, blocking this thread, until `body` has returned: for a
    /// caller on a thread of its own (a peer link stopping its relay); async callers await
    /// ``stop()`` instead.
    /// - Returns: false when the thread was never started (its sockets are still the caller's).
    @available(*, noasync, message: "await stop(): this one blocks the calling thread until the loop has returned")
    @discardableResult
    func stop() -> Bool {
        guard askToStop(nil) else { return false }
        state.wait(until: { if case .ended = $0 { true } else { false } }) { _, _ in }
        return true
    }

    /// Asks the loop to stop and returns once `body` has returned, without blocking a thread.
    /// - Returns: false when the thread was never started (its sockets are still the caller's).
    @discardableResult
    func stop() async -> Bool {
        var started = true
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            started = askToStop(waiter)
        }
        return started
    }

    /// Sets the flag and the state; `waiter` is resumed once the loop has returned (at once when
    /// it has, or never started). - Returns: whether it was started.
    private func askToStop(_ waiter: CheckedContinuation<Void, Never>?) -> Bool {
        stopping.store(true, ordering: .relaxed)
        let (started, now) = state.withLock { state -> (Bool, Bool) in
            switch state {
            case .idle:
                state = .ended(failure: nil)
                return (false, true)
            case .running:
                state = .stopping(waiters: waiter.map { [$0] } ?? [])
                return (true, false)
            case .stopping(var waiters):
                if let waiter { waiters.append(waiter) }
                state = .stopping(waiters: waiters)
                return (true, false)
            case .ended:
                return (true, true)
            }
        }
        if now { waiter?.resume() }
        return started
    }
}
