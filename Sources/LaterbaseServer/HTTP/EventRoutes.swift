import HTTPTypes
import Hummingbird
import LaterbaseCore
import NIOPosix

/// POST /e/{root} (write a batch) and GET /e/{root} (the changes feed).
struct EventRoutes {
    let store: EventStore
    let writer: Writer
    let metrics: StoreMetrics
    let maxBodyBytes: Int
    let bodies: BodyBudget
    /// Where large bodies are parsed, off the task pool that answers every request (a node
    /// parsing 8 MiB bodies on it answered `/healthz` in over a second).
    let parsers: NIOThreadPool
    /// The SSE form of the feed.
    let liveFeed: LiveFeed

    /// Bodies from this size on are parsed on ``parsers``; smaller ones where they arrive.
    static let offloadBytes = 64 << 10
    /// Set by a peer link on what it POSTs: replication, for which the merge is total (see
    /// ``Principal/replicates(declared:)``); its value names the sending replica.
    static let replicaHeader = HTTPField.Name("Laterbase-Replica")!

    func register(on router: Router<LaterbaseRequestContext>) {
        router.on(.writeEvents) { request, context in try await write(request, context) }
        router.on(.feed, reading: store) { request, context in try feed(request, context) }
    }

    private func write(_ request: Request, _ context: LaterbaseRequestContext) async throws -> Response {
        let rootName = context.parameters.get("root") ?? ""
        try store.checkRoot(rootName)  // before reading the body
        let principal = try context.caller()
        try principal.authorizeWrite(root: rootName)
        let withHead = try QueryParameters(request).flag("head")
        // Reserve what the body will hold before reading it (its declared length, or the limit).
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > maxBodyBytes {
            throw LaterbaseError(.tooLarge, "the body is over the limit of \(maxBodyBytes) bytes")
        }
        let reservation = declared ?? maxBodyBytes
        guard bodies.reserve(reservation) else {
            throw LaterbaseError(.overloaded, "the node holds \(bodies.capacity >> 20) MiB of request bodies already; retry shortly")
        }
        defer { bodies.release(reservation) }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw LaterbaseError(.tooLarge, "the body is over the limit of \(maxBodyBytes) bytes")
        }
        let store = store
        let replica = request.headers[Self.replicaHeader]
        if let replica, !Names.isValidOrigin(replica) {
            throw LaterbaseError(.badRequest, "the Laterbase-Replica header names no valid origin", details: [.object([("field", .string("Laterbase-Replica"))])])
        }
        let replicating = principal.replicates(declared: replica != nil)
        let parse = { @Sendable () throws(LaterbaseError) -> PreparedBatch in
            try body.withUnsafeReadableBytes { (b) throws(LaterbaseError) in try store.prepare(root: rootName, body: b, replicating: replicating) }
        }
        let prepared = body.readableBytes < Self.offloadBytes ? try parse() : try await parsers.runIfActive { try parse() }
        try principal.authorizeWrite(prepared)
        let outcome = try await writer.write(prepared)
        // Asked for: the root's head now (the batch's events included), read after the write.
        let head = withHead ? try store.head(of: rootName) : nil
        return .json(Self.acknowledgment(outcome, head: head), status: outcome.created ? .created : .ok)
    }

    /// The response to a write: `{"events": [acknowledgment entries], "position": "<token>"}`,
    /// and `"head": "<vv>"` when asked for (`?head=true`: with many origins it is large).
    static func acknowledgment(_ outcome: WriteOutcome, head: VersionVector?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + outcome.events.count * 140)
        out.append(contentsOf: #"{"events":["#.utf8)
        for (i, e) in outcome.events.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            e.appendAcknowledgment(to: &out)
        }
        out.append(contentsOf: #"],"position":"#.utf8)
        JSONWriter.writeString(outcome.position.description, to: &out)
        if let head {
            out.append(contentsOf: #","head":"#.utf8)
            JSONWriter.writeString(head.description, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private func feed(_ request: Request, _ context: LaterbaseRequestContext) throws -> Response {
        let rootName = context.parameters.get("root") ?? ""
        try store.checkRoot(rootName)
        let principal = try context.caller()
        try principal.authorizeRead(rootName)
        let query = QueryParameters(request)
        let since = try query.position("since")
        if since != nil, query.parameters.get("vv") != nil {
            throw LaterbaseError(.badRequest, "give since or vv, not both")
        }
        if request.headers[.accept]?.contains("text/event-stream") == true {
            // A reconnecting client resumes from the id of the last event it took: a position
            // token when it followed by position, else a vv.
            let last = request.headers[HTTPField.Name("Last-Event-ID")!]
            metrics.read(.feed)
            if let since {
                let from = try last.map { (l) throws(LaterbaseError) in try ReadParameters.position(l, name: "Last-Event-ID") } ?? since
                if let from { _ = try store.changes(root: rootName, since: from, limit: 0) }  // 410 before the stream starts
                return try liveFeed.response(root: rootName, since: from, for: LiveFeed.Caller(principal: principal, holder: context.holder()))
            }
            let vv = try last.map { (l) throws(LaterbaseError) in try ReadParameters.versionVector(l, name: "Last-Event-ID") } ?? query.versionVector("vv")
            return try liveFeed.response(root: rootName, from: vv, for: LiveFeed.Caller(principal: principal, holder: context.holder()))
        }
        let limit = try query.integer("limit", default: 1000, in: 0...10_000)
        let ndjson = request.headers[.accept]?.contains("application/x-ndjson") ?? false
        metrics.read(.feed)
        if let since { return try changes(rootName, since: since, limit: limit, ndjson: ndjson, summary: query.flag("digests")) }
        let vv = try query.versionVector("vv")
        let perOrigin = try query.flag("digests")
        let page = try store.feed(root: rootName, after: vv, limit: limit, separator: ndjson ? UInt8(ascii: "\n") : UInt8(ascii: ","))
        var members: [(key: String, value: JSON)] = [
            ("vv", .string(page.vv.description)), ("head", .string(page.head.description)), ("more", .bool(page.more)),
            ("digest", .string(Hex.digest(page.digest))), ("position", .string(page.position.description)),
        ]
        // Each origin's digest, for a peer whose head is ours and whose root digest is not.
        if perOrigin {
            let digests = try store.digests(of: rootName)
            members.append(("digests", .object(digests.origins.sorted { $0.key < $1.key }.map { ($0.key, .string(Hex.digest($0.value))) })))
        }
        return Self.page(events: page.events, tail: JSON.object(members).bytes, ndjson: ndjson)
    }

    /// `GET /e/{root}?since=<token>`: `{"events": [...], "next": "<token>", "more": bool}`, or
    /// NDJSON whose last line is `{"next", "more"}`. With `digests=true` (a peer link's probe) the
    /// tail adds the root's two digests as of `next` (``RootSummary``): `digest` as the vv feed
    /// carries it, and `head_digest`, of the head.
    private func changes(_ rootName: String, since: Position?, limit: Int, ndjson: Bool, summary: Bool) throws -> Response {
        let page = try store.changes(
            root: rootName, since: since, limit: limit, separator: ndjson ? UInt8(ascii: "\n") : UInt8(ascii: ","), summary: summary)
        var members: [(key: String, value: JSON)] = [("next", .string(page.next.description)), ("more", .bool(page.more))]
        if let s = page.summary { members += [("digest", .string(Hex.digest(s.content))), ("head_digest", .string(Hex.digest(s.head)))] }
        return Self.page(events: page.events, tail: JSON.object(members).bytes, ndjson: ndjson)
    }

    /// A page's response: its events and the members after them (`tail`, a JSON object).
    static func page(events: [UInt8], tail: [UInt8], ndjson: Bool) -> Response {
        var buffer = ByteBuffer()
        if ndjson {
            buffer.reserveCapacity(events.count + tail.count + 1)
            buffer.writeBytes(events)
            buffer.writeBytes(tail)
            buffer.writeInteger(UInt8(ascii: "\n"))
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody(byteBuffer: buffer))
        }
        buffer.reserveCapacity(events.count + tail.count + 16)
        buffer.writeString(#"{"events":["#)
        buffer.writeBytes(events.dropLast())  // the last separator
        buffer.writeString("],")
        buffer.writeBytes(tail.dropFirst())  // tail's own "{"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
    }
}
