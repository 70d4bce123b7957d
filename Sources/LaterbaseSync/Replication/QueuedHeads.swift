import LaterbaseCore
import Synchronization

/// What all of a node's peer links have handed the writer and it may not have committed yet, per
/// root. In a mesh the same event reaches a node from several peers (each publishes what it
/// relays) at nearly the same moment; a link admits an event only if neither the store nor any
/// link's queue holds it, checked and claimed under one lock, so the writer gets it once.
///
/// Everything here is per origin named: a page of a root with 100,000 origins costs lookups of
/// its own events' origins, never a pass over the root's.
final class QueuedHeads: Sendable {
    private let heads = Mutex<[String: [String: UInt64]]>([:])
    /// Per root, how many writes of any link failed: a link that skipped events another link
    /// claimed may have moved its token past events that are now in no store and no queue.
    private let failures = Mutex<[String: Int]>([:])

    /// Runs `admit` with this node's head for `origins` of `root` (`storeHead`, from the store)
    /// merged with what is queued, and claims the events of the writes it returns.
    func admit(
        root: String, origins: some Collection<String>, storeHead: () -> VersionVector?, _ admit: (VersionVector) -> [PeerLinkStateMachine.Action]
    ) -> [PeerLinkStateMachine.Action] {
        heads.withLock { heads in
            guard var ours = storeHead() else { return [] }
            let stored = ours
            for origin in origins {
                guard let claim = heads[root]?[origin] else { continue }
                // What the store holds needs no claim: keep the table small.
                if claim <= stored[origin] { heads[root]![origin] = nil } else { ours[origin] = claim }
            }
            let actions = admit(ours)
            for case .write(_, let events) in actions {
                for (origin, seq) in events.lastSeqs() where seq > heads[root]?[origin] ?? 0 { heads[root, default: [:]][origin] = seq }
            }
            return actions
        }
    }

    /// A write of `root` was committed: its claims (each origin's last seq in it) are the store's
    /// now. Called on a link's thread, never the writer's: ``admit(root:origins:storeHead:_:)``
    /// reads the store under this lock, and a read waits for the writer's acknowledging thread.
    func settle(root: String, _ written: [String: UInt64]) {
        heads.withLock { heads in
            for (origin, seq) in written where (heads[root]?[origin]).map({ $0 <= seq }) == true { heads[root]![origin] = nil }
        }
    }

    /// A write of `root` failed: what was claimed may not be held. Links start from the store again.
    func release(root: String) {
        _ = heads.withLock { $0.removeValue(forKey: root) }
        failures.withLock { $0[root, default: 0] += 1 }
    }

    /// Failed writes of `root` so far (see ``release(root:)``).
    func failedWrites(root: String) -> Int { failures.withLock { $0[root] ?? 0 } }
}
