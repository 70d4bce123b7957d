import Foundation
import LaterbaseCore
import Synchronization

/// A thread that owns ZeroMQ sockets (they are not thread-safe, so each belongs to one thread),
/// with the stop flag its loop looks at between short polls.
final class SocketThread: Sendable {
    private let name: String
    private let started = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let finished = Completion<Void>()

    init(name: String) { self.name = name }

    /// Whether ``stop()`` was called; the loop should return soon after.
    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Runs `body` on a new thread, once; `body` closes the sockets it owns before returning.
    func start(_ body: @escaping @Sendable () -> Void) {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [finished] in
            body()
            finished.fulfil(())
        }
        thread.name = name
        thread.start()
    }

    /// Asks the loop to stop and waits until `body` has returned.
    /// - Returns: false when the thread was never started (its sockets are still the caller's).
    @discardableResult
    func stop() -> Bool {
        stopping.store(true, ordering: .relaxed)
        guard started.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        finished.wait()
        return true
    }
}

/// A value handed from one thread to another that blocks for it.
final class Completion<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value?

    init() {}

    func fulfil(_ v: Value) {
        condition.lock()
        value = v
        condition.signal()
        condition.unlock()
    }

    func wait() -> Value {
        condition.lock()
        defer { condition.unlock() }
        while value == nil { condition.wait() }
        return value!
    }
}
