@testable import LaterbaseCore
import Testing

/// The group commit's decisions (``CommitCoverage``): when the acknowledger may skip its own
/// meta-page sync because the writer's next commit covers it.
@Suite struct CommitCoverageTests {
    @Test func anIdleWriterMeansTheAcknowledgerSyncsItself() {
        let coverage = CommitCoverage()
        #expect(coverage.decide(for: 5, workQueued: false, waitedEnough: false) == .sync)
    }

    @Test func aCommitComingMeansWaitAndItsDataSyncCoversThePreviousOne() {
        var coverage = CommitCoverage()
        coverage.began()
        #expect(coverage.decide(for: 5, workQueued: false, waitedEnough: false) == .wait)
        coverage.ended(commit: 6)
        #expect(coverage.coveredThrough == 5)
        #expect(coverage.decide(for: 5, workQueued: false, waitedEnough: false) == .covered)
        // The newest commit is not covered by its own data sync.
        #expect(coverage.decide(for: 6, workQueued: false, waitedEnough: false) == .sync)
    }

    @Test func queuedWorkMeansWaitUntilWaitingCostsMoreThanASync() {
        let coverage = CommitCoverage()
        #expect(coverage.decide(for: 3, workQueued: true, waitedEnough: false) == .wait)
        #expect(coverage.decide(for: 3, workQueued: true, waitedEnough: true) == .sync)
    }

    @Test func aFailedTransactionCoversNothingAndCoverageNeverGoesBack() {
        var coverage = CommitCoverage()
        coverage.began()
        coverage.ended(commit: nil)
        #expect(coverage.coveredThrough == 0 && !coverage.writing)
        coverage.ended(commit: 10)
        coverage.ended(commit: 4)
        #expect(coverage.coveredThrough == 9)
        #expect(coverage.decide(for: 9, workQueued: false, waitedEnough: true) == .covered)
    }
}
