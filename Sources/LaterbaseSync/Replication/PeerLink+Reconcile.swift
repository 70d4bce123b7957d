import LaterbaseCore
import NIOCore

/// Anti-entropy for forks (contract v3, "The merge is total"): two replicas whose heads agree can
/// hold different versions of the same dots, which no vv shows. The probe compares root digests;
/// where they differ this compares them per origin and exchanges the forked origins' events
/// again, from seq 1. The writer on each side keeps one version by the merge's rule, so after one
/// exchange both hold the same. Roots of 100,000 origins cost one comparison when nothing
/// differs; the per-origin list is read only when the root digests differ.
extension PeerLink {
    /// Most forked origins exchanged in one reconciliation; the next probe finds the rest.
    static let forkedOriginsPerRound = 64

    func reconcile(_ root: String, send: Bool) -> EventLoopFuture<Void> {
        let timeout = options.httpTimeout * 3
        return client.digests(root: root, timeout: timeout).flatMap { [self] theirs in
            let ours: RootDigests
            do { ours = try store.digests(of: root) } catch { return client.eventLoop.makeFailedFuture(error) }
            let forked = Array(ours.forkedOrigins(against: theirs).prefix(Self.forkedOriginsPerRound))
            guard !forked.isEmpty else { return client.eventLoop.makeSucceededVoidFuture() }
            logger.notice("forked origins found; exchanging their events", metadata: ["peer": "\(client.url)", "root": "\(root)", "origins": "\(forked)"])
            let pulled = fetchAgain(root, after: ours.head.removing(forked), timeout: timeout)
            guard send else { return pulled }
            return pulled.flatMap { [self] in sendAgain(root, after: theirs.head.removing(forked), timeout: timeout) }
        }
    }

    /// The peer's events after `vv`, page by page, to the writer.
    private func fetchAgain(_ root: String, after vv: VersionVector, timeout: Duration) -> EventLoopFuture<Void> {
        let limit = min(options.catchUpPage, store.options.maxBatchEvents)
        return client.feed(root: root, after: vv, limit: limit, timeout: timeout).flatMap { [self] page in
            guard !page.events.isEmpty else { return client.eventLoop.makeSucceededVoidFuture() }
            let promise = client.eventLoop.makePromise(of: Void.self)
            do {
                let batch = try store.prepare(root: root, events: page.events, replicating: true)
                metrics.eventsReceived.increment(by: page.events.count)
                writer.submitWaitingForRoom(batch) { result in
                    switch result {
                    case .success: promise.succeed()
                    case .failure(let error): promise.fail(error)
                    }
                }
            } catch {
                promise.fail(error)
            }
            return promise.futureResult.flatMap { [self] in page.more ? fetchAgain(root, after: page.vv, timeout: timeout) : client.eventLoop.makeSucceededVoidFuture() }
        }
    }

    /// This node's events after `vv`, page by page, posted to the peer (which does not pull).
    private func sendAgain(_ root: String, after vv: VersionVector, timeout: Duration) -> EventLoopFuture<Void> {
        let page: FeedPage
        do { page = try store.feed(root: root, after: vv, limit: store.options.maxBatchEvents) } catch { return client.eventLoop.makeFailedFuture(error) }
        guard page.count > 0 else { return client.eventLoop.makeSucceededVoidFuture() }
        return client.post(root: root, body: page.array, timeout: timeout).flatMap { [self] in
            page.more ? sendAgain(root, after: page.vv, timeout: timeout) : client.eventLoop.makeSucceededVoidFuture()
        }
    }
}

extension VersionVector {
    /// The vv without `origins`: their events from seq 1.
    func removing(_ origins: [String]) -> VersionVector {
        VersionVector(entries.filter { !origins.contains($0.key) })
    }
}
