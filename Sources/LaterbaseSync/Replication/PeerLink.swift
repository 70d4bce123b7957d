import Foundation
import LaterbaseCore
import Logging
import NIOCore
import Synchronization
import ZeroMQ

/// What a peer link knows about its peer, for status reports and ``EdgeDevice/sync(timeout:)``.
public struct PeerStatus: Sendable {
    /// The URL the link was given.
    public var url: String
    /// The peer's origin, once discovered.
    public var replica: String?
    /// The roots synced with the peer: those both nodes have.
    public var roots: [String] = []
    /// Whether the last probe of the peer's feed answered.
    public var reachable = false
    /// Probes that answered since the link started.
    public var probes = 0
    /// The peer's head per root, as acknowledged (by probes, feed pages and its deltas).
    public var peerHeads: [String: VersionVector] = [:]
    /// Roots whose catch-up from the peer has not finished.
    public var catchingUp: Set<String> = []
    /// Why the link is not syncing, when it is not (e.g. the peer named an invalid replica).
    public var error: String?
    /// Whether this node pushes to the peer (it does not when the peer links back and pulls).
    public var pushing = false
    /// The peer's position token per root (contract v3, "Positions") through which this node
    /// holds all the peer stored: where the link resumes. None for a root still synced by vv.
    public var tokens: [String: String] = [:]
    /// Roots whose last probe found the peer holding the same dots as this node (equal heads,
    /// compared by digest when the link follows by position).
    public var inSync: Set<String> = []
    /// Origins the peer refused an event of, per root: left out of pushes until retried.
    public var stalled: [String: [Stall]] = [:]
    /// Why the peer may refuse events this node accepts: its `/node` announces smaller limits
    /// (``NodeLimits/shortfall(against:)``); nil when they are not smaller, or not announced.
    public var limits: String?

    /// An origin whose event the peer refused.
    public struct Stall: Sendable, Equatable {
        public var origin: String
        /// The peer's error code, e.g. `invalid_event`.
        public var code: String
        public var reason: String
    }
}

/// Continuous two-way sync with one peer: a thin shell, on a thread of its own that owns the
/// link's two ZeroMQ sockets, around ``PeerLinkStateMachine``, which makes every decision (read
/// its rules there). The shell performs the machine's actions and reports what came of them:
///
/// - a SUB socket on the peer's publish endpoint brings its deltas;
/// - a PUSH socket on the peer's ingest endpoint takes pages of this node's feed;
/// - HTTP requests (discovery, probes, catch-up pages) run on the HTTP client's event loop and
///   report back through an inbox whose eventfd wakes the thread's `zmq_poll`, so no request
///   holds up the deltas;
/// - writes go to the ``Writer`` and report back the same way;
/// - the peer's acknowledged heads are kept in a ``PeerStateFile``.
final class PeerLink: Sendable {
    struct Options: Sendable {
        var machine = PeerLinkStateMachine.Configuration()
        /// Deadline of a discovery or catch-up request.
        var httpTimeout: Duration = .seconds(3)
        /// Deadline of a probe: short, so a healed link is seen soon.
        var probeTimeout: Duration = .seconds(1)
        /// Events per pushed message.
        var pushPage = 2000
        /// Events per catch-up page (at most the store's batch limit).
        var catchUpPage = 10_000
        /// This node's limits, compared with those the peer announces.
        var limits: NodeLimits?
    }

    let client: PeerClient
    let store: EventStore
    let writer: Writer
    private let queued: QueuedHeads
    private let context: ZMQContext
    /// Presented on the peer's sockets when they are CURVE servers.
    private let keyPair: CurveKeyPair?
    let metrics: PeerMetrics
    private let dataDirectory: String
    let options: Options
    let logger: Logger
    private let thread = SocketThread(name: "laterbase-peer")
    private let inbox: Inbox
    private let probeNow = Atomic<Bool>(false)
    /// What the link knows of its peer, published by the link's thread and awaited by
    /// ``EdgeDevice/sync(timeout:)``.
    let status: StatusWatch<PeerStatus>

    init(client: PeerClient, store: EventStore, writer: Writer, queued: QueuedHeads, context: ZMQContext, keyPair: CurveKeyPair?, metrics: PeerMetrics,
         dataDirectory: String, options: Options = Options(), logger: Logger) throws {
        self.client = client
        self.store = store
        self.writer = writer
        self.queued = queued
        self.context = context
        self.keyPair = keyPair
        self.metrics = metrics
        self.dataDirectory = dataDirectory
        self.options = options
        self.logger = logger
        self.inbox = try Inbox()
        self.status = StatusWatch(PeerStatus(url: client.url))
    }

    var currentStatus: PeerStatus { status.value }

    /// Asks for a probe (and so a catch-up, if one is due) now.
    func requestProbe() {
        probeNow.store(true, ordering: .relaxed)
        inbox.wake()
    }

    /// Why the link's thread ended without being asked to, or nil.
    var failure: String? { thread.failure }

    func start() {
        thread.start { [self] in
            var shell = Shell(machine: PeerLinkStateMachine(ourReplica: store.replicaID, configuration: options.machine, now: .now))
            run(&shell)
            shell.close()
            if let file = shell.file { _ = save(file, shell.machine.acked, tokens: shell.machine.tokens) }
            metrics.connected.record(0)
        }
    }

    func stop() async {
        inbox.wake()
        await thread.stop()
    }

    // MARK: the loop

    /// What only the link's thread touches.
    struct Shell {
        var machine: PeerLinkStateMachine
        var sub: ZMQSocket?
        /// Reports each handshake ``sub`` completes with the peer
        /// (``PeerLinkStateMachine/subscribed(now:)``).
        var subMonitor: ZMQSocket?
        /// Between the peer's publish socket and ``sub``: the bound on what the peer can make
        /// this node hold (``IngressRelay``).
        var relay: IngressRelay?
        var push: ZMQSocket?
        var file: PeerStateFile?
        /// This node's heads as last read, with its position then: read again only when the
        /// position moved (a root with 100,000 origins costs a pass over them to read).
        var heads: [String: (position: Position, head: VersionVector, readAt: ContinuousClock.Instant, took: Duration)] = [:]
        /// Per root, how many times its head was read: which read a tick's `ours` is.
        var headReads: [String: Int] = [:]
        /// ``QueuedHeads/failedWrites(root:)`` as last seen, per root.
        var failedWrites: [String: Int] = [:]

        mutating func close() {
            sub?.close()
            subMonitor?.close()
            push?.close()
            relay?.stop()
            sub = nil
            subMonitor = nil
            push = nil
            relay = nil
        }
    }

    /// What the HTTP client and the writer report back to the link's thread.
    enum Report: Sendable {
        case node(Result<NodeInfo, any Error>)
        /// Per root probed by position, the page, or nil where the peer answered 410.
        case probe(Result<(NodeInfo, [String: FeedResponse], [String: (asked: String, page: ChangesResponse?)]), any Error>)
        case page(root: String, after: PeerLinkStateMachine.FeedCursor, Result<PeerLinkStateMachine.Page, any Error>)
        /// A page's end, read from its tail before its events.
        case pageEnd(root: String, after: PeerLinkStateMachine.FeedCursor, next: PeerLinkStateMachine.FeedCursor, more: Bool)
        /// A write's outcome, with each origin's last seq in it (its claims, settled when it succeeded).
        case written(root: String, LaterbaseError?, [String: UInt64])
        case reconciled(root: String, (any Error)?)
    }

    private func run(_ shell: inout Shell) {
        var busy = false
        while !thread.isStopping {
            let now = ContinuousClock.now
            let wait = busy ? .zero : min(shell.machine.nextDeadline(now: now) - now, .milliseconds(100))
            let sockets = [shell.sub, shell.subMonitor].compactMap { $0 }
            let ready = (try? zmqPoll(sockets, fileDescriptors: [inbox.fileDescriptor], timeout: wait))
            inbox.clear()
            if ready?.sockets.first == true { takeDeltas(&shell) }
            if ready?.sockets.dropFirst().first == true, subscribed(&shell) { perform(shell.machine.subscribed(now: .now), &shell) }
            for report in inbox.take() { handle(report, &shell) }
            if probeNow.exchange(false, ordering: .relaxed) { shell.machine.probeRequested(now: .now) }
            for root in shell.machine.syncedRoots {
                let failed = queued.failedWrites(root: root)
                if failed != shell.failedWrites[root, default: 0] {
                    shell.failedWrites[root] = failed
                    perform(shell.machine.claimsReleased(root: root, now: .now), &shell)
                }
            }
            let ours = heads(shell.machine.rootsNeedingHeads, &shell)
            busy = perform(shell.machine.tick(now: .now, ours: ours, generations: shell.headReads), &shell)
            publishStatus(shell.machine)
        }
    }

    /// This node's heads of `roots`, read again only where the root's position moved, and then
    /// not sooner than ten times the last read took (at least 20 ms): with 100,000 origins a read
    /// is a pass over them, and a link's loop turns with every report. A head a little old only
    /// delays a push, or has a vv catch-up ask for events it then skips.
    private func heads(_ roots: [String], _ shell: inout Shell) -> [String: VersionVector] {
        var out: [String: VersionVector] = [:]
        let now = ContinuousClock.now
        for root in roots {
            guard let position = try? store.position(of: root) else { continue }
            if let cached = shell.heads[root], cached.position == position || now < cached.readAt + max(cached.took * 10, .milliseconds(20)) {
                out[root] = cached.head
            } else if let head = try? store.head(of: root) {
                shell.heads[root] = (position, head, now, ContinuousClock.now - now)
                shell.headReads[root, default: 0] += 1
                out[root] = head
            }
        }
        return out
    }

    /// This node's head of the origins of `events` only, merged with what links have queued,
    /// for ``PeerLinkStateMachine`` to admit them against.
    private func admitting(_ root: String, _ events: [EventInput], _ admit: (VersionVector) -> [PeerLinkStateMachine.Action]) -> [PeerLinkStateMachine.Action] {
        let origins = events.lastSeqs().keys
        return queued.admit(root: root, origins: origins, storeHead: { try? store.head(of: root, origins: origins) }, admit)
    }

    private func handle(_ report: Report, _ shell: inout Shell) {
        let now = ContinuousClock.now
        switch report {
        case .node(.success(let info)):
            // Another replica (or the first): its own state file, and what that says it acknowledged.
            var persisted: (acked: [String: VersionVector], tokens: [String: String])?
            if shell.machine.peerReplica != info.replica {
                let file = PeerStateFile(dataDirectory: dataDirectory, peerReplica: info.replica)
                shell.file = file
                persisted = file.load(epoch: store.epoch)
            }
            perform(shell.machine.discovered(info, ourRoots: store.rootNames, persisted: persisted?.acked, tokens: persisted?.tokens, now: now), &shell)
            let shortfall = options.limits.flatMap { ours in info.limits?.shortfall(against: ours) }
            if shortfall != currentStatus.limits {
                if let shortfall { logger.warning("peer has smaller limits", metadata: ["peer": "\(client.url)", "reason": "\(shortfall)"]) }
                status.publish { $0.limits = shortfall }
            }
        case .node(.failure(let error)):
            let refused = (error as? PeerError)?.kind == .malformedAnswer
            let reason = (error as? PeerError)?.message ?? "\(error)"
            if refused, shell.machine.error != reason { logger.error("peer refused", metadata: ["peer": "\(client.url)", "error": "\(reason)"]) }
            logger.debug("peer not reachable", metadata: ["peer": "\(client.url)", "error": "\(reason)"])
            shell.machine.discoveryFailed(reason, refused: refused, now: now)
        case .probe(.success(let (info, pages, positions))):
            let probe = PeerLinkStateMachine.Probe(
                info: info, heads: pages.mapValues { (head: $0.head, more: $0.more) },
                positions: positions.mapValues { (asked: $0.asked, more: $0.page?.more ?? true, summary: $0.page?.summary, expired: $0.page == nil) },
                linksBack: info.linkedReplicas.contains(store.replicaID), digests: pages.compactMapValues(\.digest))
            // Heads and digests per origin only for roots probed by vv; the two digests of a
            // root's summary for those probed by position.
            var ours: [String: VersionVector] = [:], ourDigests: [String: UInt64] = [:], summaries: [String: RootSummary] = [:]
            for root in pages.keys {
                guard let d = try? store.digests(of: root) else { continue }
                ours[root] = d.head
                ourDigests[root] = d.root
            }
            for root in positions.keys { summaries[root] = try? store.summary(of: root) }
            perform(shell.machine.probed(probe, now: now, ours: ours, ourDigests: ourDigests, ourSummaries: summaries), &shell)
            metrics.connected.record(shell.machine.reachable ? 1 : 0)
        case .probe(.failure(let error)):
            logger.debug("peer probe failed", metadata: ["peer": "\(client.url)", "error": "\(error)"])
            perform(shell.machine.probeFailed("\(error)", now: now), &shell)
            metrics.connected.record(0)
        case .page(_, _, .success(let page)):
            let actions = admitting(page.root, page.events) { ours in shell.machine.pageArrived(page, now: now, ours: ours) }
            perform(actions, &shell)
        case .page(let root, let after, .failure(let error)):
            let expired = (error as? PeerError)?.kind == .positionExpired
            perform(shell.machine.fetchFailed(root: root, after: after, "\(error)", expired: expired, now: now), &shell)
        case .pageEnd(let root, let after, let next, let more):
            perform(shell.machine.pageEndKnown(root: root, after: after, next: next, more: more), &shell)
        case .written(let root, let failure, let written):
            if failure != nil { queued.release(root: root) } else { queued.settle(root: root, written) }
            perform(shell.machine.written(root: root, failure: failure, now: now), &shell)
        case .reconciled(let root, let failure):
            if let failure { logger.warning("reconciling forks failed; will retry", metadata: ["peer": "\(client.url)", "root": "\(root)", "error": "\(failure)"]) }
            shell.machine.reconciled(root: root, failure: failure.map { "\($0)" }, now: now)
        }
    }

    /// Performs the machine's actions, and those its answers bring.
    /// - Returns: whether a push left (there may be more to send at once).
    @discardableResult
    private func perform(_ actions: [PeerLinkStateMachine.Action], _ shell: inout Shell) -> Bool {
        var queue = actions[...]
        var pushed = false
        while let action = queue.popFirst() {
            let now = ContinuousClock.now
            switch action {
            case .discover:
                client.node(timeout: options.httpTimeout).whenComplete { [inbox] in inbox.post(.node($0)) }
            case .connect(let info):
                do {
                    try connect(info, &shell)
                    shell.machine.connected(now: now)
                    metrics.connected.record(1)
                    logger.info("peer discovered", metadata: [
                        "peer": "\(client.url)", "replica": "\(info.replica)", "roots": "\(shell.machine.syncedRoots)",
                        "publish": "\(info.publish ?? "none")", "ingest": "\(info.ingest ?? "none")",
                    ])
                } catch {
                    logger.error("could not connect to peer's ZeroMQ endpoints", metadata: ["peer": "\(client.url)", "error": "\(error)"])
                    queue += shell.machine.connectFailed("\(error)", now: now)
                }
            case .disconnect:
                shell.close()
                metrics.connected.record(0)
            case .probe(let roots):
                probe(roots, &shell)
            case .fetch(let root, let after):
                metrics.catchUps.increment()
                fetch(root, after: after)
            case .write(let root, let events):
                do {
                    let batch = try store.prepare(root: root, events: events, replicating: true)
                    metrics.eventsReceived.increment(by: events.count)
                    let written = events.lastSeqs()
                    // Answered on the writer's acknowledging thread, which must take no lock a
                    // store read can wait under (reads wait for durability, which that thread
                    // gives): the claims are settled on the link's thread.
                    writer.submitWaitingForRoom(batch) { [inbox] result in
                        if case .failure(let e) = result { inbox.post(.written(root: root, e, [:])) } else { inbox.post(.written(root: root, nil, written)) }
                    }
                } catch {
                    queued.release(root: root)
                    queue += shell.machine.written(root: root, failure: error, now: now)
                }
            case .push(let root, let after, let maxBytes):
                if send(root, after: after, maxBytes: maxBytes, &shell) { pushed = true }
            case .reconcile(let root, let send):
                reconcile(root, send: send).whenComplete { [inbox] result in
                    if case .failure(let error) = result { inbox.post(.reconciled(root: root, error)) } else { inbox.post(.reconciled(root: root, nil)) }
                }
            case .save(let acked, let tokens):
                shell.machine.saved(shell.file.map { save($0, acked, tokens: tokens) } ?? true, now: now)
            case .note(let note):
                report(note)
            }
        }
        return pushed
    }

    private func connect(_ info: NodeInfo, _ shell: inout Shell) throws {
        shell.close()
        // A peer with credentials has CURVE servers: connect as a client with its key and ours.
        var curve: (server: String, pair: CurveKeyPair)?
        if info.curve {
            guard let server = info.curvePublicKey, let pair = keyPair else {
                throw PeerError(.cannotConnect, "the peer's sockets need CURVE and this node has no key pair to present")
            }
            curve = (server, pair)
        }
        if let publish = info.publish {
            let sub = try context.socket(.sub)
            shell.sub = sub
            if let curve { try sub.setCurveClient(serverKey: curve.server, keyPair: curve.pair) }
            try sub.setReceiveHighWaterMark(100_000)
            // A delta is at most a page, or one event over it (at most the body limit): a frame
            // over that is no delta, and its peer is disconnected.
            let maxDelta = max(EventStore.pageBytes, options.limits?.maxBodyBytes ?? 0) + (64 << 10)
            try sub.setMaxMessageSize(Int64(maxDelta))
            try sub.setReconnectInterval(100, max: 500)
            try sub.setTCPKeepalive(true)
            try sub.subscribe("")
            let monitorEndpoint = "inproc://laterbase.peer.subscription.\(UUID().uuidString)"
            try sub.monitor(monitorEndpoint, events: .handshakeSucceeded)
            let monitor = try context.socket(.pair)
            shell.subMonitor = monitor
            try monitor.connect(monitorEndpoint)
            try sub.connect(relayed(publish, maxDelta: maxDelta, &shell))
        }
        if let ingest = info.ingest {
            let push = try context.socket(.push)
            shell.push = push
            if let curve { try push.setCurveClient(serverKey: curve.server, keyPair: curve.pair) }
            try push.setImmediate(true)
            try push.setSendHighWaterMark(50)
            try push.setReconnectInterval(100, max: 500)
            try push.setTCPKeepalive(true)
            try push.connect(ingest)
        }
    }

    /// Where the subscriber connects for the peer's publish socket: a relay on loopback that
    /// drops the connection once the peer sent 8 deltas' worth this link has not taken a delta
    /// of (an unfinished multipart message, or a flood the link is not reading); the subscriber
    /// reconnects, and what it missed comes by position. `publish` itself when it is not a TCP
    /// endpoint the relay can reach (it logs why).
    private func relayed(_ publish: String, maxDelta: Int, _ shell: inout Shell) -> String {
        guard let address = TCPEndpoint(publish), !address.isIPv6 else { return publish }
        do {
            let relay = try IngressRelay(
                listen: ("127.0.0.1", 0), target: (address.host, address.port), direction: .connect, budget: 8 * maxDelta, name: "subscribe",
                factory: metrics.factory, logger: logger)
            relay.start()
            shell.relay = relay
            return "tcp://127.0.0.1:\(relay.listenAddress.port)"
        } catch {
            logger.warning("subscribing to the peer without the relay: what it sends is bounded per frame only", metadata: ["publish": "\(publish)", "error": "\(error)"])
            return publish
        }
    }

    /// One catch-up page: by the peer's position, or after a vv.
    private func fetch(_ root: String, after: PeerLinkStateMachine.FeedCursor) {
        let limit = min(options.catchUpPage, store.options.maxBatchEvents)
        let timeout = options.httpTimeout * 3
        let page: EventLoopFuture<PeerLinkStateMachine.Page>
        switch after {
        case .token(let token):
            let end: @Sendable (String, Bool) -> Void = { [inbox] next, more in
                inbox.post(.pageEnd(root: root, after: after, next: .token(next), more: more))
            }
            page = client.changes(root: root, since: token, limit: limit, timeout: timeout, end: end).map { p in
                PeerLinkStateMachine.Page(root: root, after: after, events: p.events, next: .token(p.next), head: VersionVector(), more: p.more)
            }
        case .vv(let vv):
            let end: @Sendable (VersionVector, Bool) -> Void = { [inbox] next, more in
                inbox.post(.pageEnd(root: root, after: after, next: .vv(next), more: more))
            }
            page = client.feed(root: root, after: vv, limit: limit, timeout: timeout, end: end).map { p in
                PeerLinkStateMachine.Page(root: root, after: after, events: p.events, next: .vv(p.vv), head: p.head, more: p.more, position: p.position)
            }
        }
        page.whenComplete { [inbox] in inbox.post(.page(root: root, after: after, $0)) }
    }

    /// `/node`, then a feed page of limit 0 per root: by the peer's position with its digests
    /// (a request and an answer of a few hundred bytes, whatever the number of origins), or
    /// from this node's head where the link has no token.
    private func probe(_ roots: [(root: String, token: String?)], _ shell: inout Shell) {
        let ours = heads(roots.filter { $0.token == nil }.map(\.root), &shell)
        let timeout = options.probeTimeout
        typealias Answers = (NodeInfo, [String: FeedResponse], [String: (asked: String, page: ChangesResponse?)])
        client.node(timeout: timeout).flatMap { [client] info -> EventLoopFuture<Answers> in
            let loop = client.eventLoop
            var byVV: [EventLoopFuture<(String, FeedResponse)>] = []
            var byPosition: [EventLoopFuture<(String, (asked: String, page: ChangesResponse?))>] = []
            for (root, token) in roots {
                if let token {
                    // A 410 is an answer (the link starts that root again by vv), not a failed probe.
                    let page = client.changes(root: root, since: token, limit: 0, digests: true, timeout: timeout).map { Optional($0) }.flatMapErrorThrowing { error in
                        guard (error as? PeerError)?.kind == .positionExpired else { throw error }
                        return nil
                    }
                    byPosition.append(page.map { (root, (token, $0)) })
                } else {
                    byVV.append(client.feed(root: root, after: ours[root] ?? VersionVector(), limit: 0, timeout: timeout).map { (root, $0) })
                }
            }
            return EventLoopFuture.whenAllSucceed(byVV, on: loop).and(EventLoopFuture.whenAllSucceed(byPosition, on: loop)).map { vv, positions in
                (info, Dictionary(vv, uniquingKeysWith: { a, _ in a }), Dictionary(positions, uniquingKeysWith: { a, _ in a }))
            }
        }.whenComplete { [inbox] in inbox.post(.probe($0)) }
    }

    /// Sends one page of this node's feed. - Returns: whether it left.
    private func send(_ root: String, after: VersionVector, maxBytes: Int, _ shell: inout Shell) -> Bool {
        guard let socket = shell.push,
              let page = try? store.feed(root: root, after: after, limit: options.pushPage, maxBytes: maxBytes), page.count > 0
        else { return false }
        let body = page.array
        // Not taken (no connection, or the high-water mark reached): sent later, not counted.
        guard (try? socket.send([Array(root.utf8), body], wait: false)) == true else { return false }
        shell.machine.pushed(root: root, upTo: page.vv, now: .now)
        return true
    }

    /// Reads what ``Shell/subMonitor`` reported: whether the subscriber (re)connected.
    private func subscribed(_ shell: inout Shell) -> Bool {
        var handshakes = 0
        while let frames = try? shell.subMonitor?.receive(wait: false) {
            if ZMQMonitorEvent(frames: frames)?.kind == .handshakeSucceeded { handshakes += 1 }
        }
        if handshakes > 0 { logger.debug("subscribed to the peer's deltas; catching up on what came before", metadata: ["peer": "\(client.url)"]) }
        return handshakes > 0
    }

    private func takeDeltas(_ shell: inout Shell) {
        guard let sub = shell.sub else { return }
        var arrived: [String: [Delta]] = [:]
        var order: [String] = []
        var read = 0
        while read < 1000, let frames = try? sub.receive(wait: false) {
            read += 1
            shell.relay?.delivered(libzmqDescriptor: sub.lastSourceDescriptor)
            guard frames.count == 2 else { continue }
            let topic = String(decoding: frames[0], as: UTF8.self)
            if topic == Rejection.topic {
                guard let r = Rejection.Announcement(frames[1]) else { continue }
                perform(shell.machine.refused(root: r.root, code: r.code, reason: r.message, index: r.index, dots: r.dots, now: .now), &shell)
                continue
            }
            guard shell.machine.syncedRoots.contains(topic), let delta = try? Delta(parsing: frames[1]) else { continue }
            if arrived[topic] == nil { order.append(topic) }
            arrived[topic, default: []].append(delta)
        }
        for root in order {
            let deltas = arrived[root]!
            let actions = admitting(root, deltas.flatMap(\.events)) { ours in shell.machine.deltasArrived(root: root, deltas, now: .now, ours: ours) }
            perform(actions, &shell)
        }
    }

    // MARK: reporting

    private func report(_ note: PeerLinkStateMachine.Note) {
        let peer = "\(client.url)"
        switch note {
        case .catchUpStarted(let root):
            logger.debug("catching up from peer", metadata: ["peer": "\(peer)", "root": "\(root)"])
        case .gap(let root, let origin):
            metrics.gaps.increment()
            logger.debug("delta not contiguous; catching up", metadata: ["peer": "\(peer)", "root": "\(root)", "origin": "\(origin)"])
        case .resend(let root):
            metrics.resends.increment()
            logger.debug("peer did not acknowledge; sending again", metadata: ["peer": "\(peer)", "root": "\(root)"])
        case .delivered(_, let events):
            metrics.eventsSent.increment(by: events)
        case .refused(let root, let origin, let code, let reason, let retryIn):
            metrics.refusals.increment()
            logger.warning("peer refused an event; its origin is held back", metadata: [
                "peer": "\(peer)", "root": "\(root)", "origin": "\(origin)", "error": "\(code)", "reason": "\(reason)", "retry_in": "\(retryIn)",
            ])
        case .pageSizeHalved(let root, let bytes):
            logger.warning("peer refused a push as too large; smaller pages", metadata: ["peer": "\(peer)", "root": "\(root)", "bytes": "\(bytes)"])
        case .peerIsThisNode:
            logger.error("peer is this node itself; not syncing with it", metadata: ["peer": "\(peer)"])
        case .endpointsChanged:
            logger.info("peer's endpoints changed; connecting again", metadata: ["peer": "\(peer)"])
        case .unreachable:
            logger.info("peer unreachable; will discover it again", metadata: ["peer": "\(peer)"])
        case .forkSuspected(let root):
            logger.info("peer holds the same head with another digest; reconciling forked origins", metadata: ["peer": "\(peer)", "root": "\(root)"])
        case .positionExpired(let root):
            logger.notice("peer does not know this link's position (restored, or another node); catching up by vv", metadata: ["peer": "\(peer)", "root": "\(root)"])
        case .catchUpFailed(let root, let reason, let retryIn):
            logger.warning("catch-up failed; will retry", metadata: ["peer": "\(peer)", "root": "\(root)", "error": "\(reason)", "retry_in": "\(retryIn)"])
        }
    }

    /// Persists what the peer acknowledged. - Returns: whether the file was written.
    private func save(_ file: PeerStateFile, _ acked: [String: VersionVector], tokens: [String: String]) -> Bool {
        if file.save(url: client.url, acked: acked, tokens: tokens, epoch: store.epoch) { return true }
        logger.error("could not write the peer state file; will retry", metadata: ["peer": "\(client.url)", "path": "\(file.path)"])
        return false
    }

    /// What ``currentStatus`` reports, from the machine.
    private func publishStatus(_ m: PeerLinkStateMachine) {
        status.publish {
            $0.replica = m.peerReplica
            $0.roots = m.syncedRoots
            $0.reachable = m.reachable
            $0.probes = m.probes
            $0.peerHeads = m.acked
            $0.catchingUp = m.catchingUp
            $0.error = m.error
            $0.pushing = m.isPushing
            $0.tokens = m.tokens
            $0.inSync = m.inSync
            $0.stalled = m.stalls.mapValues { $0.map { PeerStatus.Stall(origin: $0.origin, code: $0.code, reason: $0.reason) } }
        }
    }
}

/// Reports handed to the link's thread, with a pipe whose read end wakes its `zmq_poll`.
final class Inbox: Sendable {
    /// The end to poll.
    let fileDescriptor: Int32
    private let writeEnd: Int32
    private let reports = Mutex<[PeerLink.Report]>([])

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw LaterbaseError(.internal, "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        fileDescriptor = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(fileDescriptor)
        close(writeEnd)
    }

    func post(_ report: PeerLink.Report) {
        reports.withLock { $0.append(report) }
        wake()
    }

    /// Makes the read end readable (a full pipe is readable already).
    func wake() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    /// Empties the pipe after a wake.
    func clear() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(fileDescriptor, &buffer, buffer.count) > 0 {}
    }

    func take() -> [PeerLink.Report] { reports.withLock { r in defer { r = [] }; return r } }
}
