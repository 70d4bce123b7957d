import LaterbaseCore
import Synchronization

/// What all of a node's peer links have handed the writer and it may not have committed yet, per
/// root. In a mesh the same event reaches a node from several peers (each publishes what it
/// relays) at nearly the same moment; a link admits an event only if neither the store nor any
/// link's queue holds it, checked and claimed under one lock, so the writer gets it once.
final class QueuedHeads: Sendable {
    private let heads = Mutex<[String: VersionVector]>([:])

    /// Runs `admit` with this node's head for `root` merged with what is queued, and claims the
    /// events of the writes it returns.
    func admit(
        root: String, storeHead: () -> VersionVector?, _ admit: (VersionVector) -> [PeerLinkStateMachine.Action]
    ) -> [PeerLinkStateMachine.Action] {
        heads.withLock { heads in
            let queued = heads[root] ?? VersionVector()
            guard let stored = storeHead() else { return [] }
            let actions = admit(stored.merging(queued))
            var claimed = queued
            for case .write(_, let events) in actions {
                for (origin, seq) in events.lastSeqs() { claimed[origin] = max(claimed[origin], seq) }
            }
            // What the store holds needs no claim: keep the table small.
            heads[root] = VersionVector(claimed.entries.filter { $0.value > stored[$0.key] })
            return actions
        }
    }

    /// A write of `root` failed: what was claimed may not be held. Links start from the store again.
    func release(root: String) {
        _ = heads.withLock { $0.removeValue(forKey: root) }
    }
}
