import Blocking
import Foundation
import Synchronization
import Testing

/// The one queue that hands work to the runtime's own threads, and the lock they sleep on: real
/// threads, no clock stubbed.
@Suite struct WorkQueueTests {
    /// Runs `body` on a thread of its own (the queue's blocking calls are for such threads) and
    /// returns what it returned, without blocking the cooperative pool.
    private func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
    }

    @Test func aRefusingQueueRefusesPastItsBoundButTakesAnythingWhenEmptyAndNothingOnceClosed() async throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 10, bytes: 100)) { .init(weight: $0, bytes: $0 * 2) }
        try queue.put(25)  // heavier than the bound, but the queue is empty
        #expect(throws: WorkQueue<Int>.Refusal.full) { try queue.put(1) }
        #expect(queue.load == .init(weight: 25, bytes: 50))
        #expect(await onThread { queue.take() } == [25])
        try queue.put(4)
        try queue.put(6)
        #expect(throws: WorkQueue<Int>.Refusal.full) { try queue.put(1) }  // 11 > 10
        queue.close()
        #expect(throws: WorkQueue<Int>.Refusal.closed) { try queue.put(1) }
        // What was queued before the close is still handed out, then nil.
        #expect(await onThread { queue.take() } == [4, 6])
        #expect(await onThread { queue.take() } == nil)
        #expect(queue.load == .zero)
    }

    @Test func aBoundInBytesRefusesLikeABoundInWeight() throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 100, bytes: 10)) { .init(weight: 1, bytes: $0) }
        try queue.put(6)
        #expect(throws: WorkQueue<Int>.Refusal.full) { try queue.put(5) }
        try queue.put(4)
    }

    @Test func aDroppingQueueDropsTheOldestUntilTheNewFits() async throws {
        let dropped = Mutex<[Int]>([])
        let queue = WorkQueue<Int>(limit: .init(weight: 10, bytes: .max), weigh: { .init(weight: $0) }, whenFull: .dropOldest { n in dropped.withLock { $0.append(n) } })
        for n in [3, 4, 2] { try queue.put(n) }
        try queue.put(5)  // 9 + 5 > 10: 3 goes (6 + 5 > 10), then 4 (2 + 5 fits)
        #expect(dropped.withLock { $0 } == [3, 4])
        #expect(queue.load.weight == 7)
        #expect(await onThread { queue.take() } == [2, 5])
    }

    @Test func takeStopsAtItsWeightButAlwaysTakesOne() async throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 1_000, bytes: .max)) { .init(weight: $0) }
        for n in [8, 3, 2, 9] { try queue.put(n) }
        #expect(await onThread { queue.take(maxWeight: 5) } == [8])  // alone over the weight
        #expect(await onThread { queue.take(maxWeight: 5) } == [3, 2])
        #expect(await onThread { queue.take(maxWeight: 5) } == [9])
    }

    @Test func aProducerWaitsForRoomAndGoesOnWhenTheTakerTakes() async throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 2, bytes: .max)) { _ in .init(weight: 1) }
        try queue.put(1)
        try queue.put(2)
        let producer = Task.detached { await onThread { (try? queue.putWaitingForRoom(3)) ?? false } }
        // The producer is blocked: the queue still holds exactly what it held.
        try await Task.sleep(for: .milliseconds(100))
        #expect(queue.load.weight == 2)
        #expect(await onThread { queue.take(maxWeight: 1) } == [1])
        #expect(await producer.value == true, "it had to wait")
        #expect(await onThread { queue.take() } == [2, 3])
    }

    @Test func aProducerWaitingForRoomHearsTheClose() async throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 1, bytes: .max)) { _ in .init(weight: 1) }
        try queue.put(1)
        let producer = Task.detached {
            await onThread { () -> WorkQueue<Int>.Refusal? in
                do throws(WorkQueue<Int>.Refusal) { try queue.putWaitingForRoom(2); return nil } catch { return error }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        queue.close()
        #expect(await producer.value == .closed)
        #expect(await onThread { queue.take() } == [1])
    }

    @Test func aLingeringTakeGoesAsSoonAsItsWeightIsReached() async throws {
        let queue = WorkQueue<Int>(limit: .init(weight: 100, bytes: .max)) { _ in .init(weight: 1) }
        try queue.put(1)
        let started = ContinuousClock.now
        let taker = Task.detached { await onThread { queue.take(maxWeight: 2, linger: .seconds(30)) } }
        try await Task.sleep(for: .milliseconds(50))
        try queue.put(2)
        #expect(await taker.value == [1, 2])
        #expect(ContinuousClock.now - started < .seconds(20), "it went when the second came, not after lingering 30 s")
    }

    @Test func aLingeringTakeGoesWithWhatItHasAtTheDeadline() async throws {
        let queue = WorkQueue<Int>()
        try queue.put(1)
        #expect(await onThread { queue.take(maxWeight: 5, linger: .milliseconds(20)) } == [1])
    }

    @Test func aWaitOnTheLockEndsAtItsDeadlineOrWhenTheStateIsReady() async throws {
        let lock = ThreadLock(0)
        let timedOut = await onThread { lock.wait(until: { $0 == 1 }, deadline: .now + .milliseconds(30)) { _, ready in ready } }
        #expect(timedOut == false)
        let waiter = Task.detached { await onThread { lock.wait(until: { $0 == 1 }, deadline: .now + .seconds(30)) { v, ready in ready && v == 1 } } }
        try await Task.sleep(for: .milliseconds(20))
        lock.withLock { $0 = 1 }  // wakes nobody: the waiter still sleeps
        lock.change { _ in }  // now it looks again
        #expect(await waiter.value == true)
    }
}
