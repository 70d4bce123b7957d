import LMDB
import Logging
import Metrics

#if canImport(Glibc)
import Glibc
#endif

/// What one batch's write came to.
public struct WriteOutcome: Sendable {
    /// Each event of the batch, in the order given: as stored now or as already stored.
    public let events: [RecordedEvent]
    /// Whether any event was new (201) rather than all already stored (200).
    public let created: Bool
    /// The root's position after the commit (contract v3, "Positions"). (Not its head: with
    /// many origins a head is large, and the writer builds none per batch; read it from the
    /// store when needed.)
    public var position = Position(epoch: 0, value: 0)
}

/// Everything a commit changed, for the commit hook (and so the PUB socket).
public struct CommittedChanges: Sendable {
    /// Per root, the events the commit added, in hlc order (which is the order of their
    /// positions), and its position before and after those events (versions of stored dots the
    /// commit replaced come after `position`, and in no delta).
    public let roots: [(root: String, events: [RecordedEvent], previous: Position, position: Position)]
}

/// The write side of the store: applies batches inside one write transaction. Lives on the
/// writer's thread and is never shared; it owns the clock, the committed heads and a cache of
/// folded aggregates.
final class StoreWriter {
    let store: EventStore
    private(set) var clock: HybridLogicalClock
    /// Heads as committed.
    private var heads: [String: [String: OriginHead]] = [:]
    /// Each root's last position as committed.
    private var positions: [String: UInt64] = [:]
    /// Folded aggregates kept decoded between commits (see AggregateFolding.swift).
    let cache = AggregateCache()
    let logger: Logger

    /// Per root, `laterbase_merge_conflicts_total` by kind.
    let conflicts: [String: [MergeConflict: Counter]]
    /// Per root, `laterbase_events_unfolded_total`: events kept that the schema refused.
    let unfoldedEvents: [String: Counter]

    /// What the merge resolved (contract v3, "The merge is total").
    enum MergeConflict: String, CaseIterable {
        /// One id under two dots.
        case id
        /// One dot with two contents.
        case dot
    }

    init(store: EventStore, metrics: StoreMetrics = StoreMetrics()) throws(LMDBError) {
        self.store = store
        self.logger = store.logger
        conflicts = Dictionary(uniqueKeysWithValues: store.rootNames.map { root in
            (root, Dictionary(uniqueKeysWithValues: MergeConflict.allCases.map { kind in
                (kind, Counter(label: "laterbase_merge_conflicts_total", dimensions: [("root", root), ("kind", kind.rawValue)], factory: metrics.factory))
            }))
        })
        unfoldedEvents = Dictionary(uniqueKeysWithValues: store.rootNames.map { root in
            (root, Counter(label: "laterbase_events_unfolded_total", dimensions: [("root", root)], factory: metrics.factory))
        })
        var clock = HybridLogicalClock(highWaterMark: HLC(rawValue: 0), physicalTime: store.physicalTime)
        var heads: [String: [String: OriginHead]] = [:]
        var positions: [String: UInt64] = [:]
        try store.env.read { (txn) throws(LMDBError) in
            var mark = try store.persistedClock(in: txn)
            for (name, r) in store.roots {
                let h = try r.heads(in: txn)
                heads[name] = h
                positions[name] = try r.lastPosition(in: txn)
                for head in h.values where head.hlc > mark { mark = head.hlc }
            }
            clock = HybridLogicalClock(highWaterMark: mark, physicalTime: store.physicalTime)
        }
        self.clock = clock
        self.heads = heads
        self.positions = positions
    }

    /// The state of one write transaction across the batches it takes.
    private struct Pending {
        /// The heads, this transaction's changes included: the writer's own copy (not shared,
        /// so a change costs no copy of a root's origins).
        var heads: [String: [String: OriginHead]]
        /// Per root, the origins whose head changed: written to `heads` at the end.
        var changedOrigins: [String: Set<String>] = [:]
        var positions: [String: UInt64]
        /// Per root, the versions that replaced stored dots' (numbered after the new events).
        var versions: [String: [RecordedEvent]] = [:]
        /// New events per root, with their decoded payloads, in the order written.
        var added: [String: [Added]] = [:]
        /// Per root, the aggregates the new events touch.
        var touched: [String: TouchedAggregates] = [:]
    }

    /// What a batch's check found: its outcome, its new events, the stored events that lost
    /// their id to one of them (to be taken out of their aggregates' folds), and the versions
    /// of stored dots that replace them.
    private struct Checked {
        var outcome: WriteOutcome
        var added: [Added]
        var demoted: [RecordedEvent]
        var versions: [(stored: RecordedEvent, kept: Added)]
        /// How many of `added` do not hold their id.
        var duplicates: Int
    }

    /// One dot with two contents: every replica keeps the version whose recorded form (as
    /// served) has the smaller SHA-256, a rule of the content alone, so whichever a replica met
    /// first, all end with the same one.
    static func keeps(_ a: RecordedEvent, over b: RecordedEvent) -> Bool {
        a.digest < b.digest
    }

    /// One id under two dots: the event recorded first, in (hlc, origin, seq) order, keeps the
    /// id (in `ids`) and is folded; the others are duplicates, stored and served but folded by
    /// no aggregate. The same rule on every replica, whatever order the dots arrive in.
    static func precedes(_ a: borrowing RecordedEvent, _ b: borrowing RecordedEvent) -> Bool {
        a.hlc != b.hlc ? a.hlc < b.hlc : (a.origin, a.seq) < (b.origin, b.seq)
    }

    /// How many of an aggregate's events wait in its tail (found through the chain in the log)
    /// before they go into the `agg` index in one run: a commit then rewrites an index page for
    /// one aggregate in this many, not for every aggregate it touches.
    static let indexEvery = 64

    /// How many events an aggregate takes before its state is encoded and kept again (in
    /// `states`); reads fold the few after it. Encoding every touched state on every commit cost
    /// the writer a sixth of its work.
    static let stateEvery = 16

    /// A new event and what its fold takes. A class: it is passed around a lot, and copying
    /// one reference is cheaper than copying the event's fields.
    final class Added {
        let event: RecordedEvent
        let decoded: any Sendable
        let position: FoldPosition
        /// The event's id, apart: sorting by it must not copy the event out.
        let id: EventID
        /// Whether it holds its id (see ``StoreWriter/precedes(_:_:)``): a duplicate is stored
        /// and served, and neither indexed by id nor folded.
        var holdsID = true
        /// Whether the root's schema knows it: an event it refused (from a peer or an admin) is
        /// stored and served, and kept in `unfolded` rather than folded.
        let folds: Bool

        init(event: RecordedEvent, decoded: any Sendable, folds: Bool = true) {
            self.event = event
            self.decoded = decoded
            self.position = FoldPosition(event)
            self.id = event.id
            self.folds = folds
        }
    }

    private var random = FastRandom()
    /// Counts write transactions, so a cached fold knows whether this one touched it yet.
    var transactionNumber = 0

    /// Writes `batches` in one transaction and commits once. Each batch is atomic on its own:
    /// a refused batch gets its error and writes nothing; the others go on.
    /// - Returns: each batch's outcome, what the commit changed, what the transaction held (for
    ///   the caller to free where it costs the writer nothing), and the commit's id, which must
    ///   still be made durable (``LMDB/WriteTransaction/commitDeferringDurability()``); nil when
    ///   nothing was committed.
    ///
    /// A batch that cannot be written for a reason of its own aggregate is refused, and the
    /// transaction made again without it: its aggregate's state does not encode once its events
    /// are folded (`invalid_event`), or what is stored of its aggregate does not decode (a chain
    /// that names an event the log lacks: `internal`, naming the aggregate). One client's bad
    /// state or damaged aggregate fails only the batches of that aggregate, not every client's
    /// in the group commit.
    func write(_ batches: [PreparedBatch]) -> (results: [Result<WriteOutcome, LaterbaseError>], changes: CommittedChanges, spent: Any, commit: Int?) {
        var refused: [Int: LaterbaseError] = [:]
        while true {
            let kept = batches.indices.filter { refused[$0] == nil }
            guard !kept.isEmpty else { return (batches.indices.map { .failure(refused[$0]!) }, CommittedChanges(roots: []), (), nil) }
            let tried = attempt(kept.map { batches[$0] })
            if let culprit = tried.culprit {
                var guilty: [(batch: Int, event: Int)] = []
                switch culprit {
                case .batch(let i, _):
                    guilty = [(kept[i], 0)]
                case .aggregate(let bad):
                    for i in kept where batches[i].root == bad.root {
                        if let event = batches[i].events.firstIndex(where: { $0.aggregate == bad.aggregate }) { guilty.append((i, event)) }
                    }
                }
                if !guilty.isEmpty {
                    for (i, event) in guilty { refused[i] = culprit.refusal(event: event) }
                    logger.warning("batches refused for their aggregate; the rest written", metadata: ["refused": "\(guilty.count)", "reason": "\(culprit)"])
                    continue
                }
            }
            var results = tried.results.makeIterator()
            return (batches.indices.map { refused[$0].map { .failure($0) } ?? results.next()! }, tried.changes, tried.spent, tried.commit)
        }
    }

    /// Why a transaction failed for one aggregate or one batch alone (``write(_:)``).
    private enum Culprit: CustomStringConvertible {
        case aggregate(AggregateFoldFailure)
        /// The batch at this index of the attempt: staging it read a damaged aggregate.
        case batch(Int, reason: String)

        func refusal(event index: Int) -> LaterbaseError {
            switch self {
            case .aggregate(let bad) where !bad.damaged:
                LaterbaseError.event(
                    .invalidEvent, index: index,
                    "the state of aggregate '\(bad.aggregate)' does not encode once this batch is folded (\(bad.reason)); nothing of this batch was stored")
            case .aggregate(let bad):
                LaterbaseError(.internal, "aggregate '\(bad.aggregate)' of \(bad.root) is damaged in this store (\(bad.reason)); nothing of this batch was stored")
            case .batch(_, let reason):
                LaterbaseError(.internal, "an aggregate of this batch is damaged in this store (\(reason)); nothing of this batch was stored")
            }
        }

        var description: String {
            switch self {
            case .aggregate(let bad): "\(bad.root)/\(bad.aggregate): \(bad.reason)"
            case .batch(_, let reason): reason
            }
        }
    }

    /// One transaction of `batches` (see ``write(_:)``); `culprit` says which aggregate or batch
    /// made it fail, if one did.
    private func attempt(_ batches: [PreparedBatch]) -> (
        results: [Result<WriteOutcome, LaterbaseError>], changes: CommittedChanges, spent: Any, commit: Int?, culprit: Culprit?
    ) {
        var pending = Pending(heads: heads, positions: positions)
        heads = [:]  // pending's are the only ones now: changed in place (restored below)
        cache.trim()
        transactionNumber += 1
        var results: [Result<WriteOutcome, LaterbaseError>] = []
        results.reserveCapacity(batches.count)
        do {
            let txn = try store.env.beginWrite()
            for batch in batches {
                switch check(batch, &pending, txn) {
                case .success(let checked):
                    do {
                        try stage(checked, root: batch.root, &pending.touched[batch.root, default: TouchedAggregates(cache: cache.root(batch.root))], txn)
                    } catch let error as LMDBError where error.isCorrupted {
                        throw DamagedBatch(index: results.count, reason: "\(error)")
                    }
                    pending.added[batch.root, default: []].append(contentsOf: checked.added)
                    if !checked.versions.isEmpty { pending.versions[batch.root, default: []] += checked.versions.map(\.kept.event) }
                    results.append(.success(checked.outcome))
                case .failure(let error):
                    results.append(.failure(error))
                }
            }
            let changes = try finish(&pending, txn)
            let commit = try txn.commitDeferringDurability()
            heads = pending.heads
            // `pending` goes back as what the transaction held, freed on another thread: it must
            // not share the heads, or the next transaction's first change would copy them all.
            pending.heads = [:]
            positions = pending.positions
            for i in results.indices {
                if case .success(var outcome) = results[i] {
                    outcome.position = Position(epoch: store.epoch, value: positions[batches[i].root] ?? 0)
                    results[i] = .success(outcome)
                }
            }
            return (results, changes, pending, commit, nil)
        } catch {
            cache.removeAll()
            // The heads as committed: what the store says (pending's hold this transaction's).
            heads = (try? store.env.read { (txn) throws(LMDBError) -> [String: [String: OriginHead]] in
                var out: [String: [String: OriginHead]] = [:]
                for (name, r) in store.roots { out[name] = try r.heads(in: txn) }
                return out
            }) ?? pending.heads
            let failure =
                if let error = error as? LMDBError, error.code == EIO, store.filesystemIsFull {
                    // LMDB reports a short write (the filesystem filled mid-commit) as EIO.
                    LaterbaseError(storage: LMDBError(code: ENOSPC, operation: error.operation), "writing")
                } else if let error = error as? LMDBError {
                    LaterbaseError(storage: error, "writing")
                } else {
                    LaterbaseError(.internal, "the write failed: \(error); nothing of this batch was stored")
                }
            let culprit: Culprit? =
                if let bad = error as? AggregateFoldFailure { .aggregate(bad) } else if let bad = error as? DamagedBatch { .batch(bad.index, reason: bad.reason) } else { nil }
            if culprit == nil { logger.error("write transaction failed", metadata: ["error": "\(error)"]) }
            let refusals = results + batches.dropFirst(results.count).map { _ in .success(WriteOutcome(events: [], created: false)) }
            return (refusals.map { r in r.flatMap { _ in .failure(failure) } }, CommittedChanges(roots: []), pending, nil, culprit)
        }
    }

    /// Checks a batch against what is stored (this transaction's earlier batches included) and
    /// assigns dots and hlcs to its new events. Writes nothing.
    private func check(_ batch: PreparedBatch, _ pending: inout Pending, _ txn: borrowing WriteTransaction) -> Result<Checked, LaterbaseError> {
        let r: RootDatabases
        do { r = try store.root(batch.root) } catch { return .failure(error) }
        // Taken out, so changes are made in place; a refused batch's are undone (`undo`, the
        // heads it changed as they were, in order).
        var heads = pending.heads.removeValue(forKey: batch.root) ?? [:]
        var undo: [(origin: String, head: OriginHead?)] = []
        func setHead(_ origin: String, _ head: OriginHead) {
            if undo.last.map({ !$0.origin.sameBytes(as: origin) }) ?? true { undo.append((origin, heads[origin])) }
            heads[origin] = head
        }
        // This node's own head, kept apart while the batch runs: through `heads` each event
        // hashed the origin's name twice.
        let ownOrigin = store.replicaID
        var own = heads[ownOrigin]
        var added: [Added] = []
        added.reserveCapacity(batch.events.count)
        var out: [RecordedEvent] = []
        out.reserveCapacity(batch.events.count)
        // Per event of `out`, where it is in `added` when new and holding its id (an event
        // already stored is found through `ids`; a duplicate is found by no id).
        var holder: [Int?] = []
        holder.reserveCapacity(batch.events.count)
        var demoted: [RecordedEvent] = []
        var versions: [(stored: RecordedEvent, kept: Added)] = []
        var duplicates = 0
        var clock = self.clock
        // Events of this batch a later event of it names again, by where they are in `out` (not
        // copies: each would cost a reference count per field). Indexed only when a lookup needs
        // them: events rarely repeat within a batch, and a map kept per event cost the writer
        // more than a tenth of a replicated event.
        var byID: [EventID: Int] = [:], byDot: [Dot: Int] = [:]
        var indexedIDs = 0, indexedDots = 0
        // The greatest id stored (this transaction's included) or named by the batch so far: an
        // id above it is not stored, with no lookup. Ids made in time order (v7, as this
        // server's and most devices') come in above it.
        var greatestID: EventID? = nil, greatestIDRead = false

        func stored(_ dot: Dot) throws(LaterbaseError) -> RecordedEvent? {
            while indexedDots < out.count {
                byDot[out[indexedDots].dot] = indexedDots
                indexedDots += 1
            }
            if let i = byDot[dot] { return out[i] }
            do { return try r.event(dot, in: txn) } catch { throw LaterbaseError(storage: error, "reading \(dot)") }
        }
        /// The event holding `id`, and where it is in `out` when this batch brought it.
        func holding(_ id: EventID) throws(LaterbaseError) -> (event: RecordedEvent, inBatch: Int?)? {
            do {
                if !greatestIDRead {
                    greatestID = try r.lastID(in: txn)
                    greatestIDRead = true
                }
                if greatestID.map({ $0 < id }) ?? true {
                    greatestID = id
                    return nil
                }
                while indexedIDs < out.count {
                    if holder[indexedIDs] != nil { byID[out[indexedIDs].id] = indexedIDs }
                    indexedIDs += 1
                }
                if let i = byID[id] { return (out[i], i) }
                guard let dot = try r.dot(for: id, in: txn), let event = try r.event(dot, in: txn) else { return nil }
                return (event, nil)
            } catch { throw LaterbaseError(storage: error, "reading event \(id)") }
        }

        do throws(LaterbaseError) {
            for (index, input) in batch.events.enumerated() {
                if let rec = input.recorded {
                    let isOwn = rec.origin.sameBytes(as: ownOrigin)
                    let head = (isOwn ? own : heads[rec.origin]) ?? OriginHead(seq: 0, hlc: HLC(rawValue: 0), digest: 0)
                    let dot = Dot(origin: rec.origin, seq: rec.seq)
                    if rec.seq <= head.seq {
                        guard let existing = try stored(dot) else {
                            throw LaterbaseError(storage: .corrupted("\(dot), under its origin's head, which the log does not hold"), "reading \(dot)")
                        }
                        if existing.sameContent(as: input) {
                            out.append(existing)
                            holder.append(nil)
                            continue
                        }
                        guard byDot[dot] == nil else {
                            throw LaterbaseError.event(.conflict, index: index, "the batch names \(dot) twice with other content", extra: [("origin", .string(rec.origin)), ("seq", .integer(rec.seq))])
                        }
                        // One dot with two contents (a forked origin): the merge is total, and every
                        // replica keeps the version the rule of ``keeps(_:over:)`` picks.
                        let version = RecordedEvent(
                            id: input.id!, aggregate: input.aggregate, type: input.type, version: input.version, data: input.dataBytes,
                            time: input.time ?? Int64(rec.hlc.milliseconds), hlc: rec.hlc, origin: rec.origin, seq: rec.seq)
                        let keepsStored = Self.keeps(existing, over: version)
                        mergeConflict(.dot, root: batch.root, version, existing, keptArrived: !keepsStored)
                        if keepsStored {
                            out.append(existing)
                            holder.append(nil)
                            continue
                        }
                        clock.receive(rec.hlc)
                        var kept = head
                        if rec.seq == head.seq { kept.hlc = rec.hlc }
                        kept.digest = (head.digest ?? 0) &- ContentDigest.of(existing) &+ ContentDigest.of(version, body: batch.bodies[index])
                        if isOwn { own = kept } else { setHead(rec.origin, kept) }
                        versions.append((existing, Added(event: version, decoded: batch.decoded[index], folds: batch.folds(index))))
                        out.append(version)
                        holder.append(nil)
                        continue
                    }
                    guard rec.seq == head.seq + 1 else {
                        throw LaterbaseError.event(.gap, index: index, "origin \(rec.origin) is at seq \(head.seq); expected seq \(head.seq + 1), got \(rec.seq)",
                            extra: [("origin", .string(rec.origin)), ("expected", .integer(head.seq + 1))])
                    }
                    // A replica's history need not hold it: a fork resolved dot by dot (``keeps(_:over:)``)
                    // can mix two branches' hlcs, and refusing that would stop the root.
                    guard rec.hlc > head.hlc || batch.replicating else {
                        throw LaterbaseError.event(.invalidEvent, index: index, "hlc \(rec.hlc) is not above \(head.hlc), that of \(rec.origin)'s previous event", extra: [("field", .string("hlc"))])
                    }
                    clock.receive(rec.hlc)
                    let event = RecordedEvent(
                        id: input.id!, aggregate: input.aggregate, type: input.type, version: input.version, data: input.dataBytes,
                        time: input.time ?? Int64(rec.hlc.milliseconds), hlc: rec.hlc, origin: rec.origin, seq: rec.seq)
                    let new = Added(event: event, decoded: batch.decoded[index], folds: batch.folds(index))
                    // The merge is total: another dot holding this id is no refusal; the first in
                    // (hlc, origin, seq) order keeps it.
                    if let (other, inBatch) = try holding(event.id) {
                        let first = Self.precedes(event, other)
                        mergeConflict(.id, root: batch.root, event, other, keptArrived: first)
                        if first {
                            byID[event.id] = out.count
                            if let i = inBatch, let a = holder[i] {
                                added[a].holdsID = false
                                holder[i] = nil
                                duplicates += 1
                            } else {
                                demoted.append(other)
                            }
                        } else {
                            new.holdsID = false
                            duplicates += 1
                        }
                    }
                    if isOwn { own = head.after(event, body: batch.bodies[index]) } else { setHead(rec.origin, head.after(event, body: batch.bodies[index])) }
                    holder.append(new.holdsID ? added.count : nil)
                    added.append(new)
                    out.append(event)
                } else {
                    if let id = input.id, let (existing, _) = try holding(id) {
                        guard existing.sameContent(as: input) else {
                            throw LaterbaseError.event(.conflict, index: index, "id \(id) is already stored with other content", extra: [("id", .string(id.description))])
                        }
                        out.append(existing)
                        holder.append(nil)
                        continue
                    }
                    let origin = ownOrigin
                    let seq = (own?.seq ?? 0) + 1
                    let hlc = clock.now()
                    let event = RecordedEvent(
                        id: input.id ?? .v7(hlc, using: &random), aggregate: input.aggregate, type: input.type,
                        version: input.version, data: input.dataBytes, time: input.time ?? Int64(hlc.milliseconds), hlc: hlc, origin: origin, seq: seq)
                    own = (own ?? OriginHead(seq: 0, hlc: HLC(rawValue: 0), digest: 0)).after(event, body: batch.bodies[index])
                    holder.append(added.count)
                    added.append(Added(event: event, decoded: batch.decoded[index]))
                    out.append(event)
                }
            }
        } catch {
            for (origin, head) in undo.reversed() { heads[origin] = head }
            pending.heads[batch.root] = heads
            return .failure(error)
        }
        self.clock = clock
        if !undo.isEmpty || own != heads[ownOrigin] {
            var changed = pending.changedOrigins.removeValue(forKey: batch.root) ?? []
            for u in undo { changed.insert(u.origin) }
            if let own, own != heads[ownOrigin] {
                heads[ownOrigin] = own
                changed.insert(ownOrigin)
            }
            pending.changedOrigins[batch.root] = changed
        }
        pending.heads[batch.root] = heads
        let outcome = WriteOutcome(events: out, created: !added.isEmpty || !versions.isEmpty)
        return .success(Checked(outcome: outcome, added: added, demoted: demoted, versions: versions, duplicates: duplicates))
    }

    /// Writes an accepted batch's events: the log (per-origin appends, each linked to its
    /// aggregate's previous event), then the id index in key order. Later batches of the
    /// transaction see them. The aggregate index is written by ``fold(_:root:_:)``, in runs.
    /// Events that lost their id (`demoted`) are taken out of their aggregates' folds by
    /// ``fold(_:root:_:)``; a dot's version that gives way is replaced (``replace(_:with:root:_:_:)``).
    private func stage(_ checked: Checked, root name: String, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws {
        let added = checked.added
        let r = try store.root(name)
        for (stored, kept) in checked.versions { try replace(stored, with: kept, root: r, &touched, txn) }
        guard !added.isEmpty else { return }
        var key: [UInt8] = [], value: [UInt8] = []
        // One origin's events come in seq order and server-made ids in hlc order, so both usually
        // sort after everything stored: appended (see ``WriteTransaction/put(_:_:_:appending:)``).
        var appendLog = true, appendIDs = true
        for a in added {
            let dot = a.position.dot
            var previous: Dot? = nil
            if a.holdsID, a.folds {
                previous = try link(a, root: r, &touched, txn)
            } else if a.holdsID {
                try keepUnfolded(a, root: r, txn)
            } else {
                try txn.put(r.duplicates, RootDatabases.duplicateKey(a.id, dot), [])
            }
            Keys.setDot(dot, in: &key)
            EventRecord.encode(a.event, previous: previous, into: &value)
            try txn.put(r.log, key, value, appending: &appendLog)
        }
        for event in checked.demoted {
            try unfold(event, root: r, &touched, txn)
            try txn.put(r.duplicates, RootDatabases.duplicateKey(event.id, event.dot), [])
        }
        var byID = added
        if checked.duplicates > 0 { byID.removeAll { !$0.holdsID } }
        byID.sortUnlessSorted { $0.id < $1.id }
        for a in byID {
            key.rewrite(count: 16) { $0.id(a.id) }
            Keys.setDot(a.position.dot, in: &value)
            try txn.put(r.ids, key, value, appending: &appendIDs)
        }
    }

    /// Completes the transaction: heads, folds, and the clock's high-water mark.
    private func finish(_ pending: inout Pending, _ txn: borrowing WriteTransaction) throws -> CommittedChanges {
        var changed: [(root: String, events: [RecordedEvent], previous: Position, position: Position)] = []
        for name in store.rootNames {
            // A batch may only replace versions of stored dots: no new event, perhaps folds to
            // redo (none when both versions were duplicates), a head's digest and positions.
            let added = pending.added[name] ?? []
            guard !added.isEmpty || pending.touched[name]?.list.isEmpty == false || pending.versions[name] != nil || pending.changedOrigins[name] != nil
            else { continue }
            let r = try store.root(name)
            if let origins = pending.changedOrigins[name], let heads = pending.heads[name] {
                // The root's summary follows its heads: each changed origin's old head out, new in.
                var summary = try RootSummary.read(name, meta: store.meta, in: txn)
                for origin in origins {
                    guard let head = heads[origin] else { continue }
                    let key = Array(origin.utf8)
                    summary.replace(origin: origin, old: try txn.get(r.heads, key).map { (v) throws(LMDBError) in try OriginHead(decoding: v) }, new: head)
                    try txn.put(r.heads, key, head.encoded)
                }
                try txn.put(store.meta, RootSummary.key(name), summary.encoded)
            }
            if let touched = pending.touched[name] { try fold(touched, root: r, txn) }
            var events = added.map(\.event)
            // Recorded events may interleave; hlcs decide but for ties.
            events.sortUnlessSorted { Self.precedes($0, $1) }
            // Positions: the new events in that order, then the versions that replaced stored
            // ones (their older places are skipped through `moved`).
            let previous = pending.positions[name] ?? 0
            var position = previous
            let versions = pending.versions[name] ?? []
            let afterAdded = previous + UInt64(events.count)
            // Positions only grow: appended through one cursor. A version's dot had a place
            // already: `moved` says which is current.
            try txn.withCursor(r.positions) { (c) throws(LMDBError) in
                var key: [UInt8] = [], value: [UInt8] = []
                func place(_ dot: Dot, moved: Bool) throws(LMDBError) {
                    position += 1
                    key.rewrite(count: 8) { $0.u64(position) }
                    Keys.setDot(dot, in: &value)
                    try c.append(key, value)
                    if moved { try txn.put(r.moved, value, key) }
                }
                for e in events { try place(e.dot, moved: false) }
                for e in versions { try place(e.dot, moved: true) }
            }
            pending.positions[name] = position
            guard !added.isEmpty else { continue }
            changed.append((name, events, Position(epoch: store.epoch, value: previous), Position(epoch: store.epoch, value: afterAdded)))
        }
        let mark = [UInt8].written(count: 8) { $0.u64(clock.last.rawValue) }
        try txn.put(store.meta, Array("hlc".utf8), mark)
        return CommittedChanges(roots: changed)
    }
}

extension RecordedEvent {
    /// Whether `input` is this event again: same id where given, aggregate, type, version, data,
    /// and time where given; for a recorded input, the same dot and hlc too.
    public func sameContent(as input: EventInput) -> Bool {
        if let id = input.id, id != self.id { return false }
        if let t = input.time, t != time { return false }
        if let rec = input.recorded, rec.origin != origin || rec.seq != seq || rec.hlc != hlc { return false }
        return aggregate.sameBytes(as: input.aggregate) && type == input.type && version == input.version && data == input.dataBytes
    }
}

extension Array {
    /// Sorts unless already in order: a commit's events and ids usually are, and checking costs
    /// one pass where sorting costs a copy.
    mutating func sortUnlessSorted(by precedes: (Element, Element) -> Bool) {
        for i in indices.dropFirst() where !precedes(self[i - 1], self[i]) {
            sort(by: precedes)
            return
        }
    }
}

/// Staging the batch at `index` of a transaction read a damaged aggregate of it.
private struct DamagedBatch: Error {
    let index: Int
    let reason: String
}
