@testable import LaterbaseSync
import Testing

/// Waiting on a published value (``StatusWatch``): continuations, resumed by the publish that
/// satisfies them, their deadline, or their task's cancellation.
@Suite struct StatusWatchTests {
    @Test func aWaiterGoesOnWithThePublishThatSatisfiesItAndNotBefore() async throws {
        let watch = StatusWatch(0)
        let waiter = Task { await watch.wait(until: { $0 >= 3 }, deadline: .now + .seconds(60)) }
        for n in 1...2 {
            try await Task.sleep(for: .milliseconds(20))
            watch.publish { $0 = n }
        }
        try await Task.sleep(for: .milliseconds(20))
        watch.publish { $0 = 5 }
        #expect(await waiter.value == 5, "the value that satisfied it, not an earlier one")
    }

    @Test func aConditionThatHoldsAlreadyAnswersAtOnce() async {
        let watch = StatusWatch("ready")
        #expect(await watch.wait(until: { $0 == "ready" }, deadline: .now + .seconds(60)) == "ready")
    }

    @Test func theDeadlineAnswersNilAndLeavesNoWaiterBehind() async throws {
        let watch = StatusWatch(0)
        let started = ContinuousClock.now
        #expect(await watch.wait(until: { $0 > 0 }, deadline: .now + .milliseconds(50)) == nil)
        #expect(ContinuousClock.now - started < .seconds(30))
        // A later publish finds nobody to resume (a listed waiter would be resumed twice: a trap).
        watch.publish { $0 = 1 }
        #expect(await watch.wait(until: { $0 == 1 }, deadline: .now + .seconds(60)) == 1)
    }

    @Test func cancellingTheWaitingTaskAnswersNil() async throws {
        let watch = StatusWatch(0)
        let waiter = Task { await watch.wait(until: { $0 > 0 }, deadline: .now + .seconds(60)) }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(await waiter.value == nil)
    }
}
