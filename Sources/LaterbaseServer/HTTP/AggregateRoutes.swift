import Foundation
import Hummingbird
import LaterbaseCore

/// GET /a/{root}/{id} (one aggregate, optionally in the past) and GET /a/{root} (all, paged).
struct AggregateRoutes {
    let store: EventStore
    let metrics: StoreMetrics

    func register(on router: Router<LaterbaseRequestContext>) {
        router.get("/a/:root") { request, context in try list(request, context) }
        router.get("/a/:root/**") { request, context in try one(request, context) }
    }

    private func one(_ request: Request, _ context: LaterbaseRequestContext) throws -> Response {
        let rootName = context.parameters.get("root") ?? ""
        try store.checkRoot(rootName)
        try context.caller().authorizeRead(rootName)
        let raw = context.parameters.getCatchAll().joined(separator: "/")
        guard let id = raw.removingPercentEncoding, Names.isValidAggregateID(id) else {
            throw LaterbaseError(.badRequest, "'\(raw)' is not a valid aggregate id")
        }
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
        let rootName = context.parameters.get("root") ?? ""
        try store.checkRoot(rootName)
        try context.caller().authorizeRead(rootName)
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
