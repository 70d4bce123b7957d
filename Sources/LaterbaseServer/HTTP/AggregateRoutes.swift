import Foundation
import Hummingbird
import LaterbaseCore

/// GET /a/{root}/{id} (one aggregate, optionally in the past), GET /a/{root} (all, paged) and
/// GET /h/{root}/{id} (one aggregate's events).
struct AggregateRoutes {
    let store: EventStore
    let metrics: StoreMetrics

    func register(on router: Router<LaterbaseRequestContext>) {
        router.on(.aggregates, reading: store) { request, context in try list(request, context) }
        router.on(.aggregate, reading: store) { request, context in try one(request, context) }
        router.on(.history, reading: store) { request, context in try history(request, context) }
    }

    /// GET /h/{root}/{id}?limit=n: the aggregate's events in fold order (time, hlc, origin, seq),
    /// `{"id", "events": [...], "more": bool}`; limit 1 to 10,000, default 1000.
    private func history(_ request: Request, _ context: LaterbaseRequestContext) throws -> Response {
        let rootName = try readableRoot(context)
        let id = try aggregateID(context)
        let limit = try QueryParameters(request).integer("limit", default: 1000, in: 1...10_000)
        metrics.read(.aggregate)
        guard let page = try store.history(root: rootName, id: id, limit: limit) else {
            throw LaterbaseError(.notFound, "no event of \(rootName)/\(id) is stored")
        }
        var out: [UInt8] = Array(#"{"id":"#.utf8)
        JSONWriter.writeString(id, to: &out)
        out.append(contentsOf: #","events":["#.utf8)
        out.append(contentsOf: page.events)
        out.append(contentsOf: "],\"more\":\(page.more)}".utf8)
        return .json(out)
    }

    /// The path's root: one of the store's (else 404) that the caller may read (else 403).
    private func readableRoot(_ context: LaterbaseRequestContext) throws -> String {
        let rootName = context.parameters.get("root") ?? ""
        try store.checkRoot(rootName)
        try context.caller().authorizeRead(rootName)
        return rootName
    }

    /// The aggregate id of a `/a/{root}/{id}` or `/h/{root}/{id}` path, percent-decoded.
    private func aggregateID(_ context: LaterbaseRequestContext) throws -> String {
        let raw = context.parameters.getCatchAll().joined(separator: "/")
        guard let id = raw.removingPercentEncoding, Names.isValidAggregateID(id) else {
            throw LaterbaseError(.badRequest, "'\(raw)' is not a valid aggregate id")
        }
        return id
    }

    private func one(_ request: Request, _ context: LaterbaseRequestContext) throws -> Response {
        let rootName = try readableRoot(context)
        let id = try aggregateID(context)
        let query = QueryParameters(request)
        let asOf = try query.time("as_of")
        let recordedBy = try query.time("recorded_by")
        metrics.read(.aggregate)
        guard let body = try store.aggregate(root: rootName, id: id, asOf: asOf, recordedBy: recordedBy) else {
            throw LaterbaseError(.notFound, "no event of \(rootName)/\(id) is folded" + (asOf != nil || recordedBy != nil ? " at that time" : ""))
        }
        return .json(body)
    }

    private func list(_ request: Request, _ context: LaterbaseRequestContext) throws -> Response {
        let rootName = try readableRoot(context)
        let query = QueryParameters(request)
        let limit = try query.integer("limit", default: 100, in: 1...1000)
        metrics.read(.aggregates)
        let page = try store.aggregates(root: rootName, after: query.aggregateID("after"), limit: limit)
        var out: [UInt8] = Array(#"{"aggregates":["#.utf8)
        for (i, a) in page.aggregates.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: a)
        }
        out.append(contentsOf: #"],"next":"#.utf8)
        if let next = page.next { JSONWriter.writeString(next, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(UInt8(ascii: "}"))
        return .json(out)
    }
}
