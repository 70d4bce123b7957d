import Foundation
import LaterbaseCore
import Logging
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
}

/// Continuous two-way sync with one peer, on a thread of its own that owns the link's two
/// ZeroMQ sockets. Only this node needs to name the peer:
///
/// - **From the peer**: a SUB socket on the peer's publish endpoint takes its live deltas and
///   writes those contiguous with what this node holds. A delta that is not (a message was missed,
///   or the link just started) sends the root to catch-up: the peer's changes feed, paged from this
///   node's head, until `more` is false. Catch-up also runs on start, after the peer was
///   unreachable, and whenever a probe shows the peer holds something this node lacks.
/// - **To the peer**: a PUSH socket on the peer's ingest endpoint sends, per root, the pages of this
///   node's own changes feed that the peer's head lacks, in (hlc, origin, seq) order, so per origin
///   in seq order, relayed events included. The peer's head, learned from its deltas and from
///   probes, is the acknowledgment; it is persisted (``PeerStateFile``), so a restart resumes from
///   it. What is sent but not acknowledged within ``Options/ackTimeout`` is sent again (the peer
///   drops what it holds).
/// - **Probes**: every ``Options/probeInterval`` the link asks the peer's feed for nothing
///   (`limit=0`) from this node's head: the answer carries the peer's head and whether this node
///   lacks anything. A probe also reads `/node`: when the peer's endpoints changed (it restarted
///   on other ports) the link connects again; after ``Options/rediscoverAfter`` failed probes it
///   drops its sockets and discovers the peer again.
final class PeerLink: Sendable {
    struct Options: Sendable {
        /// How often the link reads the peer's `/node` and head.
        var probeInterval: Duration = .seconds(1)
        var httpTimeout: Duration = .seconds(3)
        /// Most events sent and not yet acknowledged, per root.
        var pushWindow: UInt64 = 50_000
        /// Events per pushed message.
        var pushPage = 2000
        /// Most bytes in one push message: well under the default 8 MiB body limit.
        var pushPageBytes = 4 << 20
        var ackTimeout: Duration = .seconds(3)
        /// Events per catch-up page (at most the store's batch limit).
        var catchUpPage = 10_000
        /// Batches (catch-up pages, chunks of deltas) queued for the writer at once.
        var writesInFlight = 3
        var rediscoverAfter = 3
    }

    let client: PeerClient
    private let store: EventStore
    private let writer: Writer
    private let context: ZMQContext
    private let metrics: PeerMetrics
    private let dataDirectory: String
    private let options: Options
    private let logger: Logger
    private let thread = SocketThread(name: "laterbase-peer")
    private let probeNow = Atomic<Bool>(false)
    private let status: Mutex<PeerStatus>

    init(url: String, client: PeerClient, store: EventStore, writer: Writer, context: ZMQContext, metrics: PeerMetrics,
         dataDirectory: String, options: Options = Options(), logger: Logger) {
        self.client = client
        self.store = store
        self.writer = writer
        self.context = context
        self.metrics = metrics
        self.dataDirectory = dataDirectory
        self.options = options
        self.logger = logger
        self.status = Mutex(PeerStatus(url: client.url))
    }

    var currentStatus: PeerStatus { status.withLock { $0 } }

    /// Asks for a probe (and so a catch-up, if one is due) as soon as the thread is free.
    func requestProbe() { probeNow.store(true, ordering: .relaxed) }

    func start() {
        thread.start { [self] in
            var state = LinkState()
            run(&state)
            state.close()
            save(state)
            metrics.connected.record(0)
        }
    }

    func stop() { thread.stop() }

    private var isStopping: Bool { thread.isStopping }

    // MARK: the loop

    /// What only the link's thread touches.
    struct LinkState {
        var info: NodeInfo?
        var sub: ZMQSocket?
        var push: ZMQSocket?
        var roots: [String] = []
        var file: PeerStateFile?
        var fileReplica: String?
        var acked: [String: VersionVector] = [:]
        var sent: [String: VersionVector] = [:]
        var ackProgress: [String: ContinuousClock.Instant] = [:]
        var needCatchUp: Set<String> = []
        var nextCatchUp: ContinuousClock.Instant = .now
        var nextProbe: ContinuousClock.Instant = .now
        var resetAcks = false
        var failures = 0
        var reachable = false
        var probes = 0
        var ackedDirty = false
        var lastSave: ContinuousClock.Instant = .now
        var lastError: String?
        /// Wait before the next catch-up after a failed one; doubles per failure.
        var catchUpBackoff: Duration = .seconds(1)

        mutating func close() {
            sub?.close()
            push?.close()
            sub = nil
            push = nil
            info = nil
        }
    }

    private func run(_ s: inout LinkState) {
        var backoff: Duration = .milliseconds(100)
        var busy = false
        while !isStopping {
            if s.info == nil {
                if discover(&s) {
                    backoff = .milliseconds(100)
                } else {
                    publishStatus(s)
                    pause(backoff)
                    backoff = min(backoff * 2, .seconds(2))
                    continue
                }
            }
            if let sub = s.sub {
                let readable = (try? zmqPoll([sub], timeout: busy ? .zero : .milliseconds(20)))?.first ?? false
                if readable { takeDeltas(&s) }
            } else if !busy {
                pause(.milliseconds(20))
            }
            let now = ContinuousClock.now
            if now >= s.nextProbe || probeNow.exchange(false, ordering: .relaxed) { probe(&s) }
            if !s.needCatchUp.isEmpty && ContinuousClock.now >= s.nextCatchUp && s.info != nil { catchUp(&s) }
            busy = push(&s)
            publishStatus(s)
            if s.ackedDirty && ContinuousClock.now - s.lastSave > .milliseconds(250) {
                s.ackedDirty = !save(s)
                s.lastSave = .now
            }
        }
    }

    /// Persists what the peer acknowledged. - Returns: whether the file was written.
    private func save(_ s: LinkState) -> Bool {
        guard let file = s.file else { return true }
        if file.save(url: client.url, acked: s.acked) { return true }
        logger.error("could not write the peer state file; will retry", metadata: ["peer": "\(client.url)", "path": "\(file.path)"])
        return false
    }

    /// What ``currentStatus`` reports, from the loop's own state.
    private func publishStatus(_ s: LinkState) {
        status.withLock {
            $0.replica = s.fileReplica
            $0.roots = s.roots
            $0.reachable = s.reachable
            $0.probes = s.probes
            $0.peerHeads = s.acked
            $0.catchingUp = s.needCatchUp
            $0.error = s.lastError
        }
    }

    /// Sleeps up to `d`, waking for a stop or a probe request.
    private func pause(_ d: Duration) {
        let until = ContinuousClock.now + d
        while !isStopping && ContinuousClock.now < until && !probeNow.load(ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    // MARK: discovery

    private func discover(_ s: inout LinkState) -> Bool {
        let info: NodeInfo
        do {
            info = try client.node(timeout: options.httpTimeout)
        } catch let error as LaterbaseError where error.code == .badRequest {
            if s.lastError != error.message { logger.error("peer refused", metadata: ["peer": "\(client.url)", "error": "\(error.message)"]) }
            s.lastError = error.message
            return false
        } catch {
            logger.debug("peer not reachable", metadata: ["peer": "\(client.url)", "error": "\(error)"])
            s.lastError = "not reachable: \(error)"
            return false
        }
        s.lastError = nil
        guard info.replica != store.replicaID else {
            logger.error("peer is this node itself; not syncing with it", metadata: ["peer": "\(client.url)"])
            pause(.seconds(30))
            return false
        }
        if s.fileReplica != info.replica {
            let file = PeerStateFile(dataDirectory: dataDirectory, peerReplica: info.replica)
            s.file = file
            s.fileReplica = info.replica
            s.acked = file.load()
        }
        s.info = info
        s.roots = store.rootNames.filter(info.roots.contains)
        s.sent = s.acked
        s.ackProgress = [:]
        do {
            if let publish = info.publish {
                let sub = try context.socket(.sub)
                try sub.setReceiveHighWaterMark(100_000)
                try sub.setReconnectInterval(100, max: 2000)
                try sub.setTCPKeepalive(true)
                try sub.subscribe("")
                try sub.connect(publish)
                s.sub = sub
            }
            if let ingest = info.ingest {
                let push = try context.socket(.push)
                try push.setImmediate(true)
                try push.setSendHighWaterMark(50)
                try push.setReconnectInterval(100, max: 2000)
                try push.setTCPKeepalive(true)
                try push.connect(ingest)
                s.push = push
            }
        } catch {
            logger.error("could not connect to peer's ZeroMQ endpoints", metadata: ["peer": "\(client.url)", "error": "\(error)"])
            s.close()
            return false
        }
        s.needCatchUp = Set(s.roots)
        s.nextProbe = .now
        s.failures = 0
        metrics.connected.record(1)
        logger.info("peer discovered", metadata: [
            "peer": "\(client.url)", "replica": "\(info.replica)", "roots": "\(s.roots)",
            "publish": "\(info.publish ?? "none")", "ingest": "\(info.ingest ?? "none")",
        ])
        return true
    }

    // MARK: from the peer

    private func takeDeltas(_ s: inout LinkState) {
        guard let sub = s.sub else { return }
        var arrived: [String: [EventInput]] = [:]
        var read = 0
        while read < 1000, let frames = try? sub.receive(wait: false) {
            read += 1
            guard frames.count == 2 else { continue }
            let topic = String(decoding: frames[0], as: UTF8.self)
            if topic == Rejection.topic {
                noteRejection(frames[1], &s)
                continue
            }
            guard s.roots.contains(topic), let delta = try? Delta(parsing: frames[1]) else { continue }
            acknowledge(topic, delta.head, &s)
            if !s.needCatchUp.contains(topic) { arrived[topic, default: []].append(contentsOf: delta.events) }
        }
        for (root, events) in arrived { apply(root, events, &s) }
    }

    /// Writes the events this node lacks, if they follow on from its head; else schedules catch-up.
    private func apply(_ root: String, _ events: [EventInput], _ s: inout LinkState) {
        guard var head = try? store.head(of: root) else { return }
        var fresh: [EventInput] = []
        for e in events {
            guard let r = e.recorded, r.seq > head[r.origin] else { continue }
            guard r.seq == head[r.origin] + 1 else {
                metrics.gaps.increment()
                logger.debug("delta not contiguous; catching up", metadata: ["peer": "\(client.url)", "root": "\(root)", "origin": "\(r.origin)"])
                s.needCatchUp.insert(root)
                return
            }
            head[r.origin] = r.seq
            fresh.append(e)
        }
        var writes = PendingWrites(writer: writer, limit: options.writesInFlight)
        do {
            var start = 0
            while start < fresh.count {
                let chunk = Array(fresh[start..<min(start + store.options.maxBatchEvents, fresh.count)])
                start += chunk.count
                try writes.submit(store.prepare(root: root, events: chunk))
                metrics.eventsReceived.increment(by: chunk.count)
            }
            try writes.finish()
        } catch {
            logger.warning("could not apply a peer's delta; catching up", metadata: ["peer": "\(client.url)", "root": "\(root)", "error": "\(error)"])
            s.needCatchUp.insert(root)
        }
    }

    private func catchUp(_ s: inout LinkState) {
        for root in s.roots where s.needCatchUp.contains(root) && !isStopping {
            metrics.catchUps.increment()
            do {
                try catchUp(root, &s)
                s.needCatchUp.remove(root)
                s.catchUpBackoff = .seconds(1)
            } catch {
                logger.warning("catch-up failed; will retry", metadata: [
                    "peer": "\(client.url)", "root": "\(root)", "error": "\(error)", "retry_in": "\(s.catchUpBackoff)",
                ])
                s.nextCatchUp = .now + s.catchUpBackoff
                s.catchUpBackoff = min(s.catchUpBackoff * 2, .seconds(30))
                return
            }
        }
    }

    /// Pages the peer's feed from this node's head and writes each page, fetching the next pages
    /// while the writer commits earlier ones (up to ``Options/writesInFlight`` pages queued, so
    /// the writer can group them into one transaction).
    private func catchUp(_ root: String, _ s: inout LinkState) throws {
        var vv = try store.head(of: root)
        var writes = PendingWrites(writer: writer, limit: options.writesInFlight)
        let limit = min(options.catchUpPage, store.options.maxBatchEvents)
        while !isStopping {
            let page = try client.feed(root: root, after: vv, limit: limit, timeout: options.httpTimeout * 3)
            acknowledge(root, page.head, &s)
            if !page.events.isEmpty {
                try writes.submit(store.prepare(root: root, events: page.events))
                metrics.eventsReceived.increment(by: page.events.count)
            }
            // A peer that says "more" but moves nothing would have this loop spin on it.
            guard page.more == false || page.vv != vv else {
                throw LaterbaseError(.badRequest, "the peer's feed of \(root) says more but returned nothing past \(vv)")
            }
            vv = page.vv
            if !page.more { break }
        }
        try writes.finish()
    }

    // MARK: probes and acknowledgments

    private func probe(_ s: inout LinkState) {
        s.nextProbe = .now + options.probeInterval
        do {
            // A peer restarted on other ZeroMQ ports (or replaced) is discovered again.
            let info = try client.node(timeout: options.httpTimeout)
            if info != s.info {
                logger.info("peer's endpoints changed; connecting again", metadata: ["peer": "\(client.url)"])
                s.close()
                return
            }
            for root in s.roots {
                let ours = try store.head(of: root)
                let page = try client.feed(root: root, after: ours, limit: 0, timeout: options.httpTimeout)
                if s.resetAcks {
                    s.acked[root] = page.head
                    s.sent[root] = page.head
                    s.ackedDirty = true
                } else {
                    acknowledge(root, page.head, &s)
                }
                if page.more { s.needCatchUp.insert(root) }
            }
            s.resetAcks = false
            if s.failures > 0 {
                // Back after an outage: whatever was sent meanwhile may be lost.
                for root in s.roots { s.sent[root] = s.acked[root] }
                s.needCatchUp.formUnion(s.roots)
            }
            s.failures = 0
            s.reachable = true
            s.probes += 1
            metrics.connected.record(1)
        } catch {
            s.failures += 1
            s.reachable = false
            metrics.connected.record(0)
            logger.debug("peer probe failed", metadata: ["peer": "\(client.url)", "error": "\(error)"])
            if s.failures >= options.rediscoverAfter {
                logger.info("peer unreachable; will discover it again", metadata: ["peer": "\(client.url)"])
                s.close()
            }
        }
    }

    private func acknowledge(_ root: String, _ head: VersionVector, _ s: inout LinkState) {
        let old = s.acked[root] ?? VersionVector()
        guard !head.isCovered(by: old) else { return }
        s.acked[root] = old.merging(head)
        s.ackProgress[root] = .now
        s.ackedDirty = true
    }

    private func noteRejection(_ body: [UInt8], _ s: inout LinkState) {
        guard let json = try? JSONParser.parse(body), let root = json["root"]?.stringValue, s.roots.contains(root),
              json["error"]?.stringValue == LaterbaseError.Code.gap.rawValue
        else { return }
        // A push the peer could not place: resend from what it acknowledged, checked by a probe.
        s.sent[root] = s.acked[root]
        s.resetAcks = true
        s.nextProbe = .now
    }

    // MARK: to the peer

    /// Sends one page per root the peer lacks. Returns whether anything was sent.
    private func push(_ s: inout LinkState) -> Bool {
        guard let socket = s.push else { return false }
        var sentAny = false
        let now = ContinuousClock.now
        for root in s.roots {
            guard let ours = try? store.head(of: root) else { continue }
            let acked = s.acked[root] ?? VersionVector()
            var sent = s.sent[root] ?? VersionVector()
            if !sent.isCovered(by: acked), now - (s.ackProgress[root] ?? now) > options.ackTimeout {
                metrics.resends.increment()
                logger.debug("peer did not acknowledge; sending again", metadata: ["peer": "\(client.url)", "root": "\(root)"])
                sent = acked
                s.sent[root] = acked
                s.ackProgress[root] = now
            }
            let base = sent.merging(acked)
            guard !ours.isCovered(by: base) else { continue }
            var inFlight: UInt64 = 0
            for (origin, seq) in base.entries where seq > acked[origin] { inFlight += seq - acked[origin] }
            guard inFlight < options.pushWindow else { continue }
            // Bounded in bytes too, so a page of large events still fits the peer's body limit.
            guard let page = try? store.feed(root: root, after: base, limit: options.pushPage, maxBytes: options.pushPageBytes), page.count > 0 else { continue }
            var body: [UInt8] = [UInt8(ascii: "[")]
            body.reserveCapacity(page.events.count + 1)
            body.append(contentsOf: page.events.dropLast())
            body.append(UInt8(ascii: "]"))
            guard (try? socket.send([Array(root.utf8), body], wait: false)) == true else { continue }
            if inFlight == 0 { s.ackProgress[root] = now }
            s.sent[root] = page.vv
            metrics.eventsSent.increment(by: page.count)
            sentAny = true
        }
        return sentAny
    }
}

/// Batches handed to the writer and not yet confirmed, at most `limit` at a time: the link goes
/// on fetching and parsing while the writer commits, and the writer can group what is queued.
/// Batches of one root are committed in the order submitted, so each may follow on the last.
struct PendingWrites {
    let writer: Writer
    let limit: Int
    private var pending: [Completion<Result<WriteOutcome, LaterbaseError>>] = []

    init(writer: Writer, limit: Int) {
        self.writer = writer
        self.limit = limit
    }

    /// Queues a batch, first waiting for the oldest when `limit` are pending.
    /// - Throws: the refusal of a batch submitted earlier.
    mutating func submit(_ batch: PreparedBatch) throws(LaterbaseError) {
        if pending.count >= limit { try pending.removeFirst().wait().get() }
        let done = Completion<Result<WriteOutcome, LaterbaseError>>()
        writer.submit(batch, waitForRoom: true) { done.fulfil($0) }
        pending.append(done)
    }

    /// Waits for every pending batch.
    /// - Throws: the first refusal; the batches after it are still waited for.
    mutating func finish() throws(LaterbaseError) {
        var first: LaterbaseError? = nil
        for p in pending {
            if case .failure(let e) = p.wait(), first == nil { first = e }
        }
        pending = []
        if let first { throw first }
    }
}
