#if canImport(Glibc)
import Glibc
#endif

/// A value behind a lock, and the one place a thread the runtime owns sleeps until it changes.
///
/// The runtime holds its state in `Mutex<State>` over an enum, and whoever waits on the
/// cooperative pool waits as a continuation. Some waits cannot be continuations: a part that
/// must block (an LMDB write transaction belongs to the thread that began it; a ZeroMQ socket to
/// the thread that polls it) runs on a thread of its own, and when that thread has nothing to do
/// it has nothing to suspend: it must sleep until told. Those threads, and only they, wait here
/// (``wait(until:deadline:then:)`` is `noasync`): the writer for work and for its commits to be
/// covered, the publisher and the acknowledger for commits, a producer on its own thread for
/// room in the write queue, a peer link's thread for a durable read, a socket thread's stopper.
///
/// It is a pthread mutex and condition (NIO's `ConditionLock` is the same thing), the one kind
/// of condition left in the runtime. The condition waits on `CLOCK_MONOTONIC`, so a deadline does
/// not move when the wall clock is stepped (Foundation's condition waits until a `Date`, which does).
public final class ThreadLock<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// Only touched with `mutex` held.
    private var state: State

    public init(_ initial: State) {
        state = initial
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Reads or changes the state under the lock, waking nobody.
    public func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Changes the state under the lock and wakes every thread waiting on it, which looks again.
    public func change<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body(&state)
    }

    /// Sleeps, blocking this thread, until `ready` holds of the state or `deadline` passes, then
    /// runs `body` under the same lock.
    /// - Parameters:
    ///   - ready: looked at under the lock, at first and after each ``change(_:)``.
    ///   - deadline: when to stop waiting; nil: never.
    ///   - wakes: whether `body` changes the state others wait on (as ``change(_:)`` does).
    ///   - body: given the state and whether `ready` held (false: the deadline passed).
    @available(*, noasync, message: "a thread of the runtime's own sleeps here; async code awaits a continuation")
    public func wait<R>(
        until ready: (borrowing State) -> Bool, deadline: ContinuousClock.Instant? = nil, wakes: Bool = false, then body: (inout State, Bool) -> R
    ) -> R {
        pthread_mutex_lock(mutex)
        defer {
            if wakes { pthread_cond_broadcast(condition) }
            pthread_mutex_unlock(mutex)
        }
        var isReady = ready(state)
        if let deadline {
            let limit = Self.monotonicTime(at: deadline)
            while !isReady {
                var at = limit
                if pthread_cond_timedwait(condition, mutex, &at) == ETIMEDOUT {
                    isReady = ready(state)
                    break
                }
                isReady = ready(state)
            }
        } else {
            while !isReady {
                pthread_cond_wait(condition, mutex)
                isReady = ready(state)
            }
        }
        return body(&state, isReady)
    }

    /// `instant` on `CLOCK_MONOTONIC`, the condition's clock.
    private static func monotonicTime(at instant: ContinuousClock.Instant) -> timespec {
        let left = max(.zero, instant - .now)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = left.components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var total = Int(now.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            total += 1
            nanoseconds -= 1_000_000_000
        }
        return timespec(tv_sec: total, tv_nsec: nanoseconds)
    }
}
