/// What the writer's own commits have made durable, and what the acknowledger does about the
/// commits it holds: the decisions of ``Writer``'s group commit, without threads or clocks, so
/// they can be tested one by one (like ``LaterbaseSync/PeerLinkStateMachine``).
///
/// A durable LMDB commit syncs twice: the data pages, then the meta page that points at them.
/// With ``LMDB/Environment/Options/deferMetaSync`` the writer's commit does only the first. Its
/// meta page becomes durable with the next commit's data sync (it is written before it), or with
/// a sync of its own. So for a commit `id` the acknowledger waits while the writer is in a
/// transaction or has work queued (the next commit is coming and will cover it), and syncs itself
/// when the writer is idle or the wait has lasted ``Writer/coverWait`` (a large transaction under
/// way would hold the acknowledgements longer than a sync).
struct CommitCoverage: Equatable {
    /// Whether the writer is in a transaction.
    private(set) var writing = false
    /// Every commit up to this id is durable: the data sync of the commit after it covered its
    /// meta page.
    private(set) var coveredThrough = 0

    /// The writer took work and began a transaction.
    mutating func began() { writing = true }

    /// The writer's transaction ended: `commit` is its LMDB id, nil when nothing was committed
    /// (the transaction failed). A commit always writes (at least the clock's mark), so its data
    /// sync ran after the previous commit had written its meta page: that one is durable now.
    mutating func ended(commit: Int?) {
        writing = false
        if let commit { coveredThrough = max(coveredThrough, commit - 1) }
    }

    /// What the acknowledger does about the commits it holds, the newest being `id`.
    enum Decision: Equatable {
        /// The writer's commits have made it durable: no sync of its own.
        case covered
        /// Sync now: nothing is coming that would cover it (the writer is idle), or waiting
        /// longer would cost more than a sync.
        case sync
        /// Wait for the next change: a commit that will cover it is coming.
        case wait
    }

    /// - Parameters:
    ///   - id: the newest commit the acknowledger holds.
    ///   - workQueued: whether batches wait in the write queue (the writer will take them).
    ///   - waitedEnough: whether the acknowledger has waited ``Writer/coverWait`` already.
    func decide(for id: Int, workQueued: Bool, waitedEnough: Bool) -> Decision {
        if coveredThrough >= id { return .covered }
        if waitedEnough || !(writing || workQueued) { return .sync }
        return .wait
    }
}
