import LaterbaseCore

/// Every decision of one peer link, apart from its I/O, in the style of async-http-client's
/// connection pool: each event method takes what happened and returns the ``Action``s the shell
/// (``PeerLink``) must perform. It owns no socket, file or clock (`now` is an argument), so its
/// rules are tested without a network.
///
/// The rules:
/// - **Discovery.** Until the peer's `/node` answers with a valid replica that is not this node,
///   the link asks again with backoff (100 ms doubling to 1 s); then it connects its sockets.
/// - **Probes.** Every ``Configuration/probeInterval`` one probe reads `/node` and the peer's head
///   per root. A probe that fails ``Configuration/rediscoverAfter`` times in a row drops the
///   sockets and discovers again; the first answer after a failure resends from what was
///   acknowledged and catches up every root.
/// - **By position.** The link follows the peer's feed by the peer's position token (contract v3,
///   "Positions"): per root it keeps the token through which this node holds, or has queued, all
///   the peer stored, and persists it (with this node's epoch) once the writer has it. A delta
///   whose `previous` is the token moves it to the delta's `position`; one that does not (a
///   delta missed, or the peer restored) starts a catch-up by `since`. Probes ask `since` the
///   token with limit 0 and the root's two digests: no vv travels, whatever the number of
///   origins. A vv is used only to start (no token yet, and this node already holds events of
///   the root; an empty root starts from the beginning by `since`), and again after the peer
///   answers 410 or a page does not follow on; the vv catch-up's last page carries the peer's
///   position, where following by token begins.
/// - **From the peer.** A delta or catch-up page is written as far as it follows on from this
///   node's head *including what is already queued for the writer*, so a page and a delta carrying
///   the same events write them once. A delta that does not follow on starts a catch-up. Deltas are
///   applied while a catch-up is running (nothing holds them). A probe starts a catch-up only if the
///   head the peer showed at the previous probe is still not held: while deltas flow, "more" is
///   always true and means nothing.
/// - **Catch-up pages.** One page request at a time for the link, a second for the same root as
///   soon as the first page's end is read from its tail (while the writer has room for both);
///   pages are taken in the order asked, whichever answers first. A gap seen while a page is out
///   fetches again after it.
/// - **To the peer.** Only when the peer does not link back to this node (its `/node` lists no
///   reachable link to us): a peer that pulls our deltas and feed needs no pushes, and pushing as
///   well is how a mesh sent every event twice. Not while a catch-up of the root goes page after
///   page (a page said more). Pages go from what the peer acknowledged or was
///   sent; unacknowledged pages are resent after ``Configuration/ackTimeout``.
/// - **Refusals.** A peer announces every refused ingest message on its publish socket
///   (`_rejected`), whoever sent it: the link acts only on one that names dots it pushed and the
///   peer has not acknowledged (its own push), so a device's bad message steers no peer. A refused
///   event stalls only its origin on that root: the origin is left out of pushes and retried with
///   backoff (1 s doubling to 5 min), reported in the link's status. A gap resends from the peer's
///   head; a message with too many events halves the page size.
/// - **Forks.** Heads that agree can hide different versions of the same dots (a forked
///   origin). When a probe finds the peer's head equal to this node's and its root digest not,
///   the link reconciles that root: it compares the digests per origin and fetches the forked
///   origins' events again, sending its own to a peer that does not pull; the writer keeps one
///   version by the merge's rule on both sides. One reconciliation at a time per root, at most
///   one per ``Configuration/reconcileInterval``.
/// - **Accounting.** `delivered` counts pushed events when the peer acknowledges them, not when
///   a socket queued them.
struct PeerLinkStateMachine {
    struct Configuration: Sendable {
        var probeInterval: Duration = .seconds(1)
        /// Most events sent and not yet acknowledged, per root.
        var pushWindow: UInt64 = 50_000
        /// Most bytes in one push message: well under the default 8 MiB body limit.
        var pushPageBytes = 4 << 20
        var minPushPageBytes = 16 << 10
        var ackTimeout: Duration = .seconds(3)
        /// Batches queued for the writer before catch-up fetches another page.
        var writesInFlight = 3
        /// Most events in one batch handed to the writer (the store's limit).
        var maxBatchEvents = 10_000
        var rediscoverAfter = 3
        var discoveryRetry: ClosedRange<Duration> = .milliseconds(100) ... .seconds(1)
        var catchUpRetry: ClosedRange<Duration> = .seconds(1) ... .seconds(30)
        var refusalRetry: ClosedRange<Duration> = .seconds(1) ... .seconds(300)
        /// Wait after finding the peer is this node itself.
        var selfRetry: Duration = .seconds(30)
        /// Least time between writes of the acknowledged heads to the peer state file.
        var saveInterval: Duration = .milliseconds(250)
        /// Least time between two reconciliations of a root's forks.
        var reconcileInterval: Duration = .seconds(5)
        /// Whether the link follows the peer by its position tokens (contract v3); false: by vv
        /// only, as before v3 (the benchmark's baseline, and the rules' tests of vv catch-up).
        var positions = true
    }

    /// What the shell must do.
    enum Action {
        /// Read the peer's `/node`; answer with ``discovered(_:now:)`` or ``discoveryFailed(_:refused:now:)``.
        case discover
        /// Open the SUB and PUSH sockets on the peer's endpoints; answer with ``connected(now:)`` or
        /// ``connectFailed(_:now:)``.
        case connect(NodeInfo)
        /// Close both sockets.
        case disconnect
        /// Read `/node` and, per root, a feed page of limit 0: by position after the token given
        /// (with the root's digests), or after this node's head where none is; answer with
        /// ``probed(_:now:ours:ourDigests:ourSummaries:)`` or ``probeFailed(_:now:)``.
        case probe(roots: [(root: String, token: String?)])
        /// Read one catch-up page of `root` after `after`; answer with ``pageArrived(_:now:ours:)``
        /// or ``fetchFailed(root:after:_:expired:now:)``.
        case fetch(root: String, after: FeedCursor)
        /// Hand these recorded events (each following on from the last) to the writer; answer with
        /// ``written(root:failure:now:)``.
        case write(root: String, events: [EventInput])
        /// Send a page of this node's feed of `root` after `vv`, at most `maxBytes`; answer with
        /// ``pushed(root:upTo:now:)`` or nothing when the socket would not take it.
        case push(root: String, after: VersionVector, maxBytes: Int)
        /// Compare the root's digests per origin with the peer's, fetch the forked origins' events
        /// again and, when `send`, send this node's to the peer; answer with
        /// ``reconciled(root:failure:now:)``.
        case reconcile(root: String, send: Bool)
        /// Persist the acknowledged heads and the peer's tokens that the writer holds everything
        /// up to; answer with ``saved(_:now:)``.
        case save([String: VersionVector], tokens: [String: String])
        /// Something to count or log.
        case note(Note)
    }

    enum Note: Equatable {
        case catchUpStarted(root: String)
        case gap(root: String, origin: String)
        case resend(root: String)
        /// Pushed events the peer acknowledged.
        case delivered(root: String, events: Int)
        case refused(root: String, origin: String, code: String, reason: String, retryIn: Duration)
        case pageSizeHalved(root: String, bytes: Int)
        case peerIsThisNode
        case endpointsChanged
        case unreachable
        case catchUpFailed(root: String, reason: String, retryIn: Duration)
        /// The peer does not know the token (it was restored, or the token is not its own): the
        /// root starts again from this node's vv.
        case positionExpired(root: String)
        /// The peer holds the same head and another digest: some origin forked.
        case forkSuspected(root: String)
    }

    /// An origin left out of pushes of a root until `until`, because the peer refused its event.
    struct Stall: Equatable, Sendable {
        var origin: String
        var code: String
        var reason: String
        var until: ContinuousClock.Instant
        var backoff: Duration
        /// The peer's ack for the origin when it refused: once past it, the stall is over.
        var ackedAt: UInt64
        /// Whether the origin is being sent again, the backoff having passed.
        var retrying = false
    }

    /// Where a feed page starts: after a vv (the peer's feed by vv), or after one of the peer's
    /// position tokens ("" for the beginning).
    enum FeedCursor: Equatable, Sendable {
        case vv(VersionVector)
        case token(String)
    }

    /// A probe's answer.
    struct Probe {
        var info: NodeInfo
        /// Per root probed by vv: the peer's head, and whether it holds something this node lacked.
        var heads: [String: (head: VersionVector, more: Bool)]
        /// Per root probed by position: the token asked with, whether the peer stored more after
        /// it, its summary of the root, and whether it answered 410 (it does not know the token).
        var positions: [String: (asked: String, more: Bool, summary: RootSummary?, expired: Bool)] = [:]
        /// Whether the peer has a reachable link to this node, and so pulls from it.
        var linksBack: Bool
        /// The peer's root digests, where it sent them.
        var digests: [String: UInt64] = [:]
    }

    /// One page of the peer's feed, as fetched by catch-up.
    struct Page {
        var root: String
        var after: FeedCursor
        var events: [EventInput]
        /// Where the next page starts: the vv advanced, or the page's `next` token.
        var next: FeedCursor
        /// A vv page's `head`; empty for a page by position (it carries none).
        var head: VersionVector
        var more: Bool
        /// A vv page's `position`: the peer's token as of the page.
        var position: String? = nil
    }

    private enum Phase {
        /// Not connected: discover when `notBefore` has passed.
        case discovering(notBefore: ContinuousClock.Instant, inFlight: Bool)
        case connecting(NodeInfo)
        case linked(NodeInfo)
    }

    /// Per synced root.
    private struct RootState {
        var acked = VersionVector()
        var sent = VersionVector()
        /// Events this link handed to the writer (with this node's head: what it will hold).
        var queued = VersionVector()
        var ackProgress: ContinuousClock.Instant?
        /// The peer's head at the previous probe.
        var probedHead: VersionVector?
        /// A reconciliation of forks is out; the next may start at `reconcileDue`.
        var reconciling = false
        var reconcileDue: ContinuousClock.Instant?
        var catchUpDue: ContinuousClock.Instant?
        /// The `after` of each page request out, oldest first: one, or two once the first
        /// page's end is known before its events are read (``pageEndKnown(root:after:next:more:)``).
        var fetches: [FeedCursor] = []
        /// A page that came before the one it follows (the second request answered first).
        var early: Page?
        var fetching: Bool { !fetches.isEmpty }
        /// A gap was seen while a page was out: that page may have been served before what the
        /// gap lacks, so the catch-up goes on after it even if it says no more.
        var gapWhileFetching = false
        var catchUpBackoff: Duration
        var stalls: [String: Stall] = [:]
        var pageBytes: Int
        /// Pushed high-water per origin: what `delivered` counts against.
        var pushed = VersionVector()
        /// The peer's token through which this node holds or has queued all the peer stored;
        /// nil: none known (the link goes by vv).
        var token: String?
        /// The token as of the last write of this root the writer finished: what is persisted.
        var heldToken: String?
        /// Writes of this root handed to the writer and not answered.
        var writes = 0
        /// The token when a probe last said the peer had more after it.
        var probedMore: String?
        /// The last probe found the peer holding the same dots as this node.
        var inSync = false
        /// A catch-up page said more, and the next is due or out: pushes wait for its end.
        var paging = false
        /// Counts changes to what a push step decides from (acknowledged, sent, stalls).
        var pushInputs = 0
        /// The head generation and ``pushInputs`` at which a push step last found nothing to do.
        var pushQuiet: (generation: Int, inputs: Int)?
        /// Deltas taken whole while a catch-up page was out: the token moves over them once the
        /// page's end is its `previous` (so a catch-up under steady writes ends caught up).
        var chained: [(previous: Position, position: Position)] = []
    }

    let configuration: Configuration
    let ourReplica: String
    private(set) var peerReplica: String?
    private var phase: Phase
    private var roots: [String: RootState] = [:]
    private var rootOrder: [String] = []
    private var persisted: [String: VersionVector] = [:]
    private var persistedTokens: [String: String] = [:]
    private var discoveryBackoff: Duration
    private var nextProbe: ContinuousClock.Instant
    private var probeInFlight = false
    private var failures = 0
    private var linksBack = false
    private var resetAcks = false
    /// The probe out was asked by vv to reset acknowledgments from (``resetAcks`` when it left).
    private var probeResetsAcks = false
    private var ackedDirty = false
    private var saveInFlight = false
    private var lastSave: ContinuousClock.Instant
    private var writesPending = 0
    private(set) var reachable = false
    private(set) var probes = 0
    private(set) var error: String?

    init(ourReplica: String, configuration: Configuration = Configuration(), now: ContinuousClock.Instant) {
        self.ourReplica = ourReplica
        self.configuration = configuration
        phase = .discovering(notBefore: now, inFlight: false)
        discoveryBackoff = configuration.discoveryRetry.lowerBound
        nextProbe = now
        lastSave = now
    }

    // MARK: what the status shows

    var syncedRoots: [String] { rootOrder }
    /// The peer's token per root, as far as this node holds everything up to it.
    var tokens: [String: String] { roots.compactMapValues(\.heldToken) }
    /// Roots whose last probe found the peer holding the same dots as this node.
    var inSync: Set<String> { Set(roots.filter(\.value.inSync).keys) }
    /// The roots ``tick(now:ours:generations:)`` needs this node's head of: those it pushes to
    /// (but not while their catch-up goes page after page), and those it fetches by vv (no token
    /// yet). The others cost no read of a head.
    var rootsNeedingHeads: [String] {
        rootOrder.filter { (isPushing && roots[$0]?.paging != true) || roots[$0]?.token == nil }
    }
    var acked: [String: VersionVector] { roots.mapValues(\.acked).filter { !$0.value.entries.isEmpty } }
    var catchingUp: Set<String> { Set(roots.filter { $0.value.catchUpDue != nil || $0.value.fetching }.keys) }
    var stalls: [String: [Stall]] { roots.mapValues { $0.stalls.values.sorted { $0.origin < $1.origin } }.filter { !$0.value.isEmpty } }
    var isPushing: Bool {
        guard case .linked(let info) = phase else { return false }
        return info.ingest != nil && !linksBack
    }
    var isLinked: Bool {
        if case .linked = phase { return true }
        return false
    }
    /// When ``tick(now:ours:)`` has something to do next without any other event.
    func nextDeadline(now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        var t = now + .seconds(1)
        switch phase {
        case .discovering(let notBefore, let inFlight): if !inFlight { t = min(t, notBefore) }
        case .connecting: break
        case .linked:
            if !probeInFlight { t = min(t, nextProbe) }
            // A catch-up waiting for the writer or for another root's page is woken by that
            // answer, not by time (a past due time here had the link's poll spin).
            let fetchCanStart = writesPending < configuration.writesInFlight && !roots.values.contains(where: \.fetching)
            for r in roots.values {
                if let due = r.catchUpDue, fetchCanStart { t = min(t, due) }
                for s in r.stalls.values where !s.retrying { t = min(t, s.until) }
                if let p = r.ackProgress, !r.sent.isCovered(by: r.acked) { t = min(t, p + configuration.ackTimeout) }
            }
        }
        if ackedDirty && !saveInFlight { t = min(t, lastSave + configuration.saveInterval) }
        return max(t, now)
    }

    // MARK: time

    /// What is due at `now`, given this node's head per root.
    /// - Parameter generations: per root, which read of this node's head `ours` holds (lets a
    ///   push step that found nothing skip the next ones until something changed).
    mutating func tick(now: ContinuousClock.Instant, ours: [String: VersionVector], generations: [String: Int] = [:]) -> [Action] {
        var actions: [Action] = []
        switch phase {
        case .discovering(let notBefore, let inFlight):
            if !inFlight && now >= notBefore {
                phase = .discovering(notBefore: notBefore, inFlight: true)
                actions.append(.discover)
            }
        case .connecting:
            break
        case .linked:
            if !probeInFlight && now >= nextProbe {
                probeInFlight = true
                probeResetsAcks = resetAcks
                // By vv where no token is known yet, or the peer's head is needed (a push it refused
                // as a gap resends from there).
                actions.append(.probe(roots: rootOrder.map { ($0, resetAcks ? nil : roots[$0]!.token) }))
            }
            for root in rootOrder {
                actions += catchUpStep(root, now: now, ours: ours[root] ?? VersionVector())
            }
            if isPushing {
                // Not while a catch-up goes page after page: what comes in then is the peer's
                // own, and deciding a push costs a pass over the root's origins each time.
                for root in rootOrder where !roots[root]!.paging {
                    actions += pushStep(root, now: now, ours: ours[root] ?? VersionVector(), generation: generations[root])
                }
            }
        }
        if ackedDirty && !saveInFlight && now - lastSave >= configuration.saveInterval {
            saveInFlight = true
            ackedDirty = false
            lastSave = now
            actions.append(.save(acked, tokens: tokens))
        }
        return actions
    }

    /// The caller wants a probe now (e.g. ``EdgeDevice/sync(timeout:)``).
    mutating func probeRequested(now: ContinuousClock.Instant) {
        nextProbe = min(nextProbe, now)
        if case .discovering(_, let inFlight) = phase { phase = .discovering(notBefore: now, inFlight: inFlight) }
    }

    // MARK: discovery

    /// The peer's `/node` answered.
    /// - Parameters:
    ///   - ourRoots: this node's roots; those the peer has too are synced.
    ///   - persisted: what the peer state file says the peer acknowledged, when the shell had to
    ///     load it (the replica is not ``peerReplica``).
    ///   - tokens: what the file says of the peer's tokens (nil like `persisted`).
    mutating func discovered(
        _ info: NodeInfo, ourRoots: [String], persisted: [String: VersionVector]?, tokens: [String: String]? = nil, now: ContinuousClock.Instant
    ) -> [Action] {
        guard info.replica != ourReplica else {
            error = "the peer is this node itself; not syncing with it"
            phase = .discovering(notBefore: now + configuration.selfRetry, inFlight: false)
            return [.note(.peerIsThisNode)]
        }
        error = nil
        if peerReplica != info.replica {
            peerReplica = info.replica
            self.persisted = persisted ?? [:]
            persistedTokens = tokens ?? [:]
            roots = [:]
        }
        rootOrder = ourRoots.filter(info.roots.contains)
        var next: [String: RootState] = [:]
        for root in rootOrder {
            var r = roots[root] ?? RootState(catchUpBackoff: configuration.catchUpRetry.lowerBound, pageBytes: configuration.pushPageBytes)
            if roots[root] == nil {
                r.acked = self.persisted[root] ?? VersionVector()
                r.heldToken = configuration.positions ? persistedTokens[root] : nil
            }
            // What the writer holds: a write out when the link dropped may yet fail.
            r.token = r.heldToken
            r.sent = r.acked
            r.pushQuiet = nil
            r.ackProgress = nil
            r.fetches = []
            r.early = nil
            r.queued = VersionVector()
            next[root] = r
        }
        roots = next
        phase = .connecting(info)
        return [.connect(info)]
    }

    /// The peer's `/node` did not answer, or described no valid node.
    /// - Parameter refused: the answer came but was refused (an invalid replica, not a node).
    mutating func discoveryFailed(_ reason: String, refused: Bool, now: ContinuousClock.Instant) {
        error = refused ? reason : "not reachable: \(reason)"
        retryDiscovery(now: now)
    }

    private mutating func retryDiscovery(now: ContinuousClock.Instant) {
        phase = .discovering(notBefore: now + discoveryBackoff, inFlight: false)
        discoveryBackoff = min(discoveryBackoff * 2, configuration.discoveryRetry.upperBound)
    }

    mutating func connected(now: ContinuousClock.Instant) {
        guard case .connecting(let info) = phase else { return }
        phase = .linked(info)
        discoveryBackoff = configuration.discoveryRetry.lowerBound
        failures = 0
        linksBack = false
        nextProbe = now
        // A catch-up in backoff keeps it: a peer whose answers fail probes too (and so is
        // discovered again and again) must not have catch-up spin on it.
        for root in rootOrder {
            let due = roots[root]?.catchUpDue ?? now
            roots[root]?.catchUpDue = max(due, now)
        }
    }

    /// The subscriber's handshake with the peer's publish socket completed (first connection or
    /// reconnection): deltas come from now on, and what the peer published before reached nobody
    /// here (ZeroMQ's late joiner; a relay drop or a network loss ends the same way). Each root
    /// catches up from where it is, so nothing waits for the next delta or two probes.
    mutating func subscribed(now: ContinuousClock.Instant) -> [Action] {
        guard isLinked else { return [] }
        return rootOrder.flatMap { startCatchUp($0, now: now) }
    }

    mutating func connectFailed(_ reason: String, now: ContinuousClock.Instant) -> [Action] {
        error = "could not connect to the peer's ZeroMQ endpoints: \(reason)"
        retryDiscovery(now: now)
        return [.disconnect]
    }

    // MARK: probes

    /// - Parameters:
    ///   - ours: this node's head of each root probed by vv.
    ///   - ourDigests: this node's root digests, from the snapshot `ours` came from.
    ///   - ourSummaries: this node's summary of each root probed by position.
    mutating func probed(
        _ probe: Probe, now: ContinuousClock.Instant, ours: [String: VersionVector], ourDigests: [String: UInt64] = [:],
        ourSummaries: [String: RootSummary] = [:]
    ) -> [Action] {
        probeInFlight = false
        nextProbe = now + configuration.probeInterval
        guard case .linked(let info) = phase else { return [] }
        if probe.info.replica != info.replica || probe.info.ingest != info.ingest || probe.info.publish != info.publish
            || probe.info.roots != info.roots
        {
            return drop(.endpointsChanged, now: now)
        }
        var actions: [Action] = []
        let recovered = failures > 0
        // Whether this probe read the heads to reset acknowledgments from (one asked before the
        // reset was wanted did not); a 410 it meets asks for another.
        let resetting = probeResetsAcks && resetAcks
        probeResetsAcks = false
        for root in rootOrder {
            var forked = false
            if let answer = probe.heads[root] {
                if resetting {
                    roots[root]!.acked = answer.head
                    roots[root]!.sent = answer.head
                    roots[root]!.pushInputs &+= 1
                    ackedDirty = true
                } else {
                    actions += acknowledge(root, answer.head, now: now)
                }
                let held = (ours[root] ?? VersionVector()).merging(roots[root]!.queued)
                if answer.more, let previous = roots[root]!.probedHead, !previous.isCovered(by: held) {
                    actions += startCatchUp(root, now: now)
                }
                roots[root]!.probedHead = answer.head
                roots[root]!.inSync = answer.head == ours[root]
                if let theirs = probe.digests[root], let mine = ourDigests[root], theirs != mine, answer.head == ours[root] { forked = true }
            } else if let answer = probe.positions[root] {
                if answer.expired {
                    roots[root]!.inSync = false
                    if answer.asked == roots[root]!.token { actions += expire(root, now: now) }
                    continue
                }
                // A probe asked with a token since moved on (deltas came) says nothing of now.
                if answer.asked == roots[root]!.token, answer.more {
                    // More twice at the same token: a delta was missed and none came after it.
                    if roots[root]!.probedMore == answer.asked { actions += startCatchUp(root, now: now) }
                    roots[root]!.probedMore = answer.asked
                } else {
                    roots[root]!.probedMore = nil
                }
                let mine = ourSummaries[root]
                roots[root]!.inSync = !answer.more && answer.summary != nil && answer.summary?.head == mine?.head
                if let theirs = answer.summary, let mine, theirs.head == mine.head, theirs.content != mine.content { forked = true }
            } else {
                continue
            }
            if forked, !roots[root]!.reconciling, roots[root]!.reconcileDue.map({ $0 <= now }) ?? true {
                roots[root]!.reconciling = true
                roots[root]!.inSync = false
                actions += [.note(.forkSuspected(root: root)), .reconcile(root: root, send: !probe.linksBack)]
            }
            if recovered {
                roots[root]!.sent = roots[root]!.acked
                roots[root]!.pushInputs &+= 1
                actions += startCatchUp(root, now: now)
            }
        }
        if resetting { resetAcks = false }
        failures = 0
        reachable = true
        probes += 1
        linksBack = probe.linksBack
        return actions
    }

    /// A reconciliation of `root`'s forks ended.
    mutating func reconciled(root: String, failure: String?, now: ContinuousClock.Instant) {
        guard roots[root] != nil else { return }
        roots[root]!.reconciling = false
        roots[root]!.reconcileDue = now + configuration.reconcileInterval
        if let failure { error = "reconciling \(root): \(failure)" }
    }

    mutating func probeFailed(_ reason: String, now: ContinuousClock.Instant) -> [Action] {
        probeInFlight = false
        nextProbe = now + configuration.probeInterval
        failures += 1
        reachable = false
        guard failures >= configuration.rediscoverAfter, isLinked else { return [] }
        error = "not reachable: \(reason)"
        return drop(.unreachable, now: now)
    }

    /// Closes the link and discovers the peer again at once.
    private mutating func drop(_ note: Note, now: ContinuousClock.Instant) -> [Action] {
        phase = .discovering(notBefore: now, inFlight: false)
        reachable = false
        for root in rootOrder {
            roots[root]!.fetches = []
            roots[root]!.early = nil
            roots[root]!.gapWhileFetching = false
            roots[root]!.paging = false
            // A catch-up's backoff stays (``connected(now:)`` starts the others).
        }
        return [.note(note), .disconnect]
    }

    // MARK: from the peer

    /// Deltas of one root from the peer's publish socket, in the order they came.
    mutating func deltasArrived(root: String, _ deltas: [Delta], now: ContinuousClock.Instant, ours: VersionVector) -> [Action] {
        guard isLinked, roots[root] != nil else { return [] }
        var actions: [Action] = []
        var fresh: [EventInput] = []
        var gap: String?
        var chainBroken = false
        for delta in deltas {
            actions += acknowledge(root, delta.head, now: now)
            guard gap == nil else { continue }
            let (admitted, gapOrigin) = admit(root, delta.events, ours: ours, pending: fresh)
            fresh += admitted
            gap = gapOrigin
            if gap == nil, roots[root]!.token != nil, !follow(root, delta) { chainBroken = true }
        }
        actions += write(root, fresh)
        if roots[root]!.writes == 0 { hold(root) }
        if let gap {
            actions.append(.note(.gap(root: root, origin: gap)))
            actions += startCatchUp(root, now: now)
        } else if chainBroken, !roots[root]!.fetching {
            // By position: what came between the token and this delta was missed.
            actions += startCatchUp(root, now: now)
        }
        return actions
    }

    /// Moves the root's token over a delta that starts at it (its events admitted). - Returns:
    /// false when the delta does not follow on from the token and is not older than it: the
    /// events between were missed (or the peer was restored).
    /// While a catch-up page is out the token is the page's to move: a later delta tells whether
    /// one was missed.
    private mutating func follow(_ root: String, _ delta: Delta) -> Bool {
        guard let previous = delta.previous, let position = delta.position else { return false }
        guard !roots[root]!.fetching else {
            if roots[root]!.chained.count < 10_000 { roots[root]!.chained.append((previous, position)) }
            return true
        }
        guard let text = roots[root]!.token else { return false }
        if text.isEmpty {  // the beginning: the peer's first delta of the root
            guard previous.value == 0 else { return false }
            roots[root]!.token = position.description
            return true
        }
        guard let token = Position(token: text), token.epoch == previous.epoch else { return false }
        if position.value <= token.value { return true }  // already past it (a catch-up page had it)
        guard previous.value == token.value else { return false }
        roots[root]!.token = position.description
        return true
    }

    /// The writer holds everything up to the token: it is what a restart resumes from.
    private mutating func hold(_ root: String) {
        guard roots[root]!.heldToken != roots[root]!.token else { return }
        roots[root]!.heldToken = roots[root]!.token
        ackedDirty = true
    }

    /// The end of a page out is known before its events are read (the client reads the page's
    /// short tail first): when it says more, the next page is asked for at once, so the peer
    /// serves it while this node reads and writes this one. At most two requests are out for a
    /// root, and only while the writer has room for both pages.
    mutating func pageEndKnown(root: String, after: FeedCursor, next: FeedCursor, more: Bool) -> [Action] {
        guard isLinked, let r = roots[root], r.fetches == [after], more, next != after,
              writesPending + 1 < configuration.writesInFlight
        else { return [] }
        roots[root]!.fetches.append(next)
        return [.fetch(root: root, after: next)]
    }

    /// A catch-up page arrived.
    mutating func pageArrived(_ page: Page, now: ContinuousClock.Instant, ours: VersionVector) -> [Action] {
        guard isLinked, let first = roots[page.root]?.fetches.first else { return [] }
        let root = page.root
        guard page.after == first else {
            // The second request answered first: taken after the first.
            if roots[root]!.fetches.dropFirst().first == page.after { roots[root]!.early = page }
            return []
        }
        roots[root]!.fetches.removeFirst()
        // A page by position carries no head: what it holds of each origin is acknowledged.
        var actions = acknowledge(root, page.head.entries.isEmpty ? VersionVector(page.events.lastSeqs()) : page.head, now: now)
        let (fresh, gapOrigin) = admit(root, page.events, ours: ours)
        actions += write(root, fresh)
        if gapOrigin != nil {
            // A page is a per-origin prefix of what this node lacked: not following on means the
            // peer's feed is wrong, or this node's head moved back (a restore). By vv from here.
            forgetToken(root)
            return actions + failCatchUp(root, "the peer's feed page does not follow on from this node's head", now: now)
        }
        switch page.next {
        case .token(let next):
            roots[root]!.token = next
            if roots[root]!.fetches.isEmpty, !page.more, !chainOver(root) { roots[root]!.gapWhileFetching = true }
            if roots[root]!.writes == 0 { hold(root) }
        case .vv:
            // The vv catch-up's end: following by the peer's position from here.
            if configuration.positions, !page.more, let position = page.position, roots[root]!.fetches.isEmpty {
                roots[root]!.token = position
                if roots[root]!.writes == 0 { hold(root) }
            }
        }
        roots[root]!.paging = page.more
        if page.more {
            // A peer that says "more" but moves nothing would have catch-up spin on it.
            guard page.next != page.after else {
                return actions + failCatchUp(root, "the peer's feed says more but returned nothing past \(page.after)", now: now)
            }
            roots[root]!.catchUpDue = now
        } else if roots[root]!.fetching {
            roots[root]!.catchUpDue = now  // the next page was asked for already: its answer ends it
        } else if roots[root]!.gapWhileFetching {
            roots[root]!.gapWhileFetching = false
            roots[root]!.catchUpDue = now
        } else {
            roots[root]!.catchUpDue = nil
            roots[root]!.catchUpBackoff = configuration.catchUpRetry.lowerBound
            return actions
        }
        if let early = roots[root]!.early, roots[root]!.fetches.first == early.after {
            roots[root]!.early = nil
            return actions + pageArrived(early, now: now, ours: ours)
        }
        return actions + catchUpStep(root, now: now, ours: ours)
    }

    /// - Parameter expired: the peer answered 410: it does not know the token.
    mutating func fetchFailed(root: String, after: FeedCursor, _ reason: String, expired: Bool = false, now: ContinuousClock.Instant) -> [Action] {
        guard let i = roots[root]?.fetches.firstIndex(of: after) else { return [] }
        if expired, case .token(let token) = after, roots[root]!.token == token || roots[root]!.heldToken == token {
            return expire(root, now: now)
        }
        // The second request failing costs nothing: the first page's answer asks again.
        if i > 0 {
            roots[root]!.fetches.remove(at: i)
            return []
        }
        return failCatchUp(root, reason, now: now)
    }

    /// Moves the token over the deltas taken while the catch-up was out. - Returns: false when
    /// one of them lies beyond where the chain reaches (one was missed: fetch again).
    private mutating func chainOver(_ root: String) -> Bool {
        let chained = roots[root]!.chained.sorted { $0.previous < $1.previous }
        roots[root]!.chained = []
        guard var token = roots[root]!.token.flatMap(Position.init(token:)) else { return true }
        for d in chained where d.previous.epoch == token.epoch && d.previous.value <= token.value && d.position.value > token.value {
            token = d.position
        }
        roots[root]!.token = token.description
        return !chained.contains { $0.position.epoch == token.epoch && $0.position.value > token.value }
    }

    /// A write of `root` failed on some link of this node: events this link skipped as queued
    /// by another may be in no store and no queue now, its token past them. By vv from this
    /// node's head (it holds what it holds), then by position again.
    mutating func claimsReleased(root: String, now: ContinuousClock.Instant) -> [Action] {
        guard roots[root] != nil, roots[root]!.token != nil || roots[root]!.heldToken != nil else { return [] }
        forgetToken(root)
        roots[root]!.queued = VersionVector()
        return startCatchUp(root, now: now)
    }

    /// By vv from here: no token, nothing out by the old one.
    private mutating func forgetToken(_ root: String) {
        roots[root]!.token = nil
        roots[root]!.heldToken = nil
        roots[root]!.probedMore = nil
        roots[root]!.fetches = []
        roots[root]!.early = nil
        ackedDirty = true
    }

    /// The peer does not know the root's token: by vv from this node's head, at once (no
    /// backoff: nothing is wrong with the peer).
    private mutating func expire(_ root: String, now: ContinuousClock.Instant) -> [Action] {
        forgetToken(root)
        roots[root]!.catchUpDue = now
        // A restored peer may have lost what it acknowledged: the next probe reads its head by
        // vv, which replaces the acknowledgments and resends from there.
        resetAcks = true
        nextProbe = now
        return [.note(.positionExpired(root: root))]
    }

    /// The writer answered a ``Action/write(root:events:)``.
    mutating func written(root: String, failure: LaterbaseError?, now: ContinuousClock.Instant) -> [Action] {
        writesPending = max(0, writesPending - 1)
        guard roots[root] != nil else { return [] }
        roots[root]!.writes = max(0, roots[root]!.writes - 1)
        guard let failure else {
            if roots[root]!.writes == 0 { hold(root) }
            return []
        }
        // What was queued is not all held: start from the store's head (and the token it holds) again.
        roots[root]!.queued = VersionVector()
        roots[root]!.token = roots[root]!.heldToken
        return failCatchUp(root, "writing the peer's events: \(failure.message)", now: now)
    }

    /// Writes of at most ``Configuration/maxBatchEvents`` each.
    private mutating func write(_ root: String, _ events: [EventInput]) -> [Action] {
        for (origin, seq) in events.lastSeqs() { roots[root]!.queued[origin] = seq }
        var actions: [Action] = []
        var start = 0
        while start < events.count {
            let end = min(start + configuration.maxBatchEvents, events.count)
            actions.append(.write(root: root, events: Array(events[start..<end])))
            writesPending += 1
            roots[root]!.writes += 1
            start = end
        }
        return actions
    }

    /// The events that follow on from what this node holds or has queued (and `pending`, about to
    /// be), and the first origin whose next event does not (a gap).
    private func admit(_ root: String, _ events: [EventInput], ours: VersionVector, pending: [EventInput] = []) -> ([EventInput], String?) {
        // Looked up per origin, not merged: `queued` may name every origin of a large root.
        let queued = roots[root]!.queued
        var head: [String: UInt64] = pending.lastSeqs()
        // Which events to take, without copying any: a page is usually taken whole.
        var take: [Bool] = []
        take.reserveCapacity(events.count)
        var gap: String? = nil
        var run: (origin: String, seq: UInt64)? = nil  // the origin of the last event, and its head
        for i in events.indices {
            guard let r = events[i].recorded else {
                take.append(false)
                continue
            }
            if let current = run, !current.origin.sameBytes(as: r.origin) {
                head[current.origin] = current.seq
                run = nil
            }
            let at = run?.seq ?? head[r.origin] ?? max(ours[r.origin], queued[r.origin])
            guard r.seq > at else {
                take.append(false)
                continue
            }
            guard r.seq == at + 1 else {
                gap = r.origin
                break
            }
            run = (r.origin, r.seq)
            take.append(true)
        }
        if gap == nil, take.count == events.count, !take.contains(false) { return (events, nil) }
        var fresh: [EventInput] = []
        for i in take.indices where take[i] { fresh.append(events[i]) }
        return (fresh, gap)
    }

    private mutating func startCatchUp(_ root: String, now: ContinuousClock.Instant) -> [Action] {
        if roots[root]!.fetching { roots[root]!.gapWhileFetching = true }
        guard roots[root]!.catchUpDue == nil, !roots[root]!.fetching else { return [] }
        roots[root]!.catchUpDue = now
        return [.note(.catchUpStarted(root: root))]
    }

    private mutating func failCatchUp(_ root: String, _ reason: String, now: ContinuousClock.Instant) -> [Action] {
        let wait = roots[root]!.catchUpBackoff
        roots[root]!.paging = false
        roots[root]!.gapWhileFetching = false  // the retry's pages are served after the gap
        roots[root]!.fetches = []  // an answer still to come is not taken
        roots[root]!.early = nil
        roots[root]!.catchUpDue = now + wait
        roots[root]!.catchUpBackoff = min(wait * 2, configuration.catchUpRetry.upperBound)
        return [.note(.catchUpFailed(root: root, reason: reason, retryIn: wait))]
    }

    private mutating func catchUpStep(_ root: String, now: ContinuousClock.Instant, ours: VersionVector) -> [Action] {
        // One page request out at a time, for the whole link.
        guard let due = roots[root]!.catchUpDue, now >= due, writesPending < configuration.writesInFlight,
              !roots.values.contains(where: \.fetching)
        else { return [] }
        let after: FeedCursor
        if let token = roots[root]!.token {
            after = .token(token)
        } else if configuration.positions, ours.entries.isEmpty && roots[root]!.queued.entries.isEmpty {
            // Nothing of the root here: the peer's feed by position from its beginning.
            after = .token("")
            roots[root]!.token = ""
        } else {
            after = .vv(ours.merging(roots[root]!.queued))
        }
        roots[root]!.fetches = [after]
        return [.fetch(root: root, after: after)]
    }

    // MARK: acknowledgments

    /// The peer holds `head`. In place and per origin of `head`: `acked` may name 100,000
    /// origins, and a delta names a few.
    private mutating func acknowledge(_ root: String, _ head: VersionVector, now: ContinuousClock.Instant) -> [Action] {
        guard roots[root] != nil, !head.isCovered(by: roots[root]!.acked) else { return [] }
        var delivered: UInt64 = 0
        for (origin, seq) in head.entries {
            let before = roots[root]!.acked[origin]
            guard seq > before else { continue }
            roots[root]!.acked[origin] = seq
            // Pushed events the peer now holds.
            let pushed = roots[root]!.pushed[origin]
            if min(seq, pushed) > min(before, pushed) { delivered += min(seq, pushed) - min(before, pushed) }
        }
        roots[root]!.ackProgress = now
        roots[root]!.pushInputs &+= 1
        ackedDirty = true
        if !roots[root]!.stalls.isEmpty {
            for (origin, stall) in roots[root]!.stalls where roots[root]!.acked[origin] > stall.ackedAt { roots[root]!.stalls[origin] = nil }
        }
        return delivered > 0 ? [.note(.delivered(root: root, events: Int(delivered)))] : []
    }

    // MARK: to the peer

    /// - Parameter generation: which read of this node's head `ours` is (nil: unknown): a root
    ///   whose last step found nothing to push, with the same head and nothing acknowledged,
    ///   sent or refused since, is skipped (a step is a pass over the root's origins).
    private mutating func pushStep(_ root: String, now: ContinuousClock.Instant, ours: VersionVector, generation: Int? = nil) -> [Action] {
        if let generation, let quiet = roots[root]!.pushQuiet, quiet == (generation, roots[root]!.pushInputs) { return [] }
        var r = roots[root]!
        var actions: [Action] = []
        defer { roots[root] = r }
        if !r.sent.isCovered(by: r.acked), let progress = r.ackProgress, now - progress > configuration.ackTimeout {
            r.sent = r.acked
            r.ackProgress = now
            actions.append(.note(.resend(root: root)))
        }
        var base = r.sent.merging(r.acked)
        for (origin, stall) in r.stalls where !stall.retrying {
            if now >= stall.until {
                // Retry: send it again from what the peer holds.
                r.stalls[origin]!.retrying = true
                base[origin] = r.acked[origin]
                r.sent[origin] = r.acked[origin]
            } else {
                // Left out: as if sent up to this node's head.
                base[origin] = max(base[origin], ours[origin])
            }
        }
        guard !ours.isCovered(by: base) else {
            // Quiet until something changes, when nothing is in flight or held back (those wait on time).
            if let generation, actions.isEmpty, r.stalls.isEmpty, r.sent.isCovered(by: r.acked) { r.pushQuiet = (generation, r.pushInputs) }
            return actions
        }
        var inFlight: UInt64 = 0
        for (origin, seq) in r.sent.entries where seq > r.acked[origin] { inFlight += seq - r.acked[origin] }
        guard inFlight < configuration.pushWindow else { return actions }
        return actions + [.push(root: root, after: base, maxBytes: r.pageBytes)]
    }

    /// A push left: the peer was sent `root`'s events up to `vv` (stalled origins excepted).
    mutating func pushed(root: String, upTo vv: VersionVector, now: ContinuousClock.Instant) {
        guard roots[root] != nil else { return }
        if roots[root]!.sent.isCovered(by: roots[root]!.acked) || roots[root]!.ackProgress == nil { roots[root]!.ackProgress = now }
        roots[root]!.pushInputs &+= 1
        // In place: `sent` may name every origin of a large root.
        for (origin, seq) in vv.entries where roots[root]!.stalls[origin]?.retrying ?? true {
            if seq > roots[root]!.sent[origin] { roots[root]!.sent[origin] = seq }
            if seq > roots[root]!.pushed[origin] { roots[root]!.pushed[origin] = seq }
        }
    }

    /// The peer announced that it refused a message of `root` (`_rejected`).
    /// - Parameters:
    ///   - index: the refused event's position in the message, when the error names one.
    ///   - dots: each event's dot in the message, as far as known.
    mutating func refused(
        root: String, code: LaterbaseError.Code, reason: String, index: Int?, dots: [Dot?], now: ContinuousClock.Instant
    ) -> [Action] {
        guard isPushing, var r = roots[root] else { return [] }
        r.pushInputs &+= 1
        defer { roots[root] = r }
        // This link's push names dots it sent that the peer has not acknowledged; a message
        // that names none of those was someone else's, and changes nothing here.
        func sentByUs(_ dot: Dot) -> Bool { dot.seq > r.acked[dot.origin] && dot.seq <= r.sent[dot.origin] }
        let ours = Set(dots.compactMap { $0 }.filter(sentByUs).map(\.origin))
        guard !ours.isEmpty else { return [] }
        let pointed = index.flatMap { dots.indices.contains($0) ? dots[$0] : nil }
        if let pointed, !sentByUs(pointed) { return [] }
        switch code {
        case .gap:
            // A push the peer could not place: resend from what it holds, as a probe will show.
            r.sent = r.acked
            resetAcks = true
            nextProbe = now
            return [.note(.resend(root: root))]
        case .tooLarge where pointed == nil:
            // The message as a whole (too many events): smaller pages.
            r.pageBytes = max(configuration.minPushPageBytes, r.pageBytes / 2)
            r.sent = r.acked
            return [.note(.pageSizeHalved(root: root, bytes: r.pageBytes))]
        default:
            // One event refused (a peer with smaller limits, another schema): its origin waits.
            let named: Set<String> = pointed.map { [$0.origin] } ?? ours
            var actions: [Action] = []
            for origin in named.sorted() {
                let backoff = r.stalls[origin].map { min($0.backoff * 2, configuration.refusalRetry.upperBound) } ?? configuration.refusalRetry.lowerBound
                r.stalls[origin] = Stall(origin: origin, code: code.rawValue, reason: reason, until: now + backoff, backoff: backoff, ackedAt: r.acked[origin])
                r.sent[origin] = r.acked[origin]
                actions.append(.note(.refused(root: root, origin: origin, code: code.rawValue, reason: reason, retryIn: backoff)))
            }
            return actions
        }
    }

    // MARK: the state file

    mutating func saved(_ ok: Bool, now: ContinuousClock.Instant) {
        saveInFlight = false
        if !ok { ackedDirty = true }
    }
}

extension Array where Element == EventInput {
    /// Each origin's last seq among these recorded events, in one pass that hashes an origin
    /// only when the run of its events ends.
    func lastSeqs() -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        var run: (origin: String, seq: UInt64)? = nil
        for i in indices {
            guard let r = self[i].recorded else { continue }
            if let current = run, !current.origin.sameBytes(as: r.origin) { out[current.origin] = current.seq }
            run = (r.origin, r.seq)
        }
        if let run { out[run.origin] = run.seq }
        return out
    }
}
