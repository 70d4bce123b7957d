import Hummingbird
import LaterbaseCore

/// Reads and checks query parameters, refusing malformed ones with 400 `bad_request`.
struct QueryParameters {
    let parameters: Hummingbird.Parameters

    init(_ request: Request) { parameters = request.uri.queryParameters }

    func string(_ name: String) -> String? { parameters.get(name) }

    /// An integer in `range`, `default` when absent.
    func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(LaterbaseError) -> Int {
        guard let text = parameters.get(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw LaterbaseError(.badRequest, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)", details: [.object([("parameter", .string(name))])])
        }
        return n
    }

    /// A time: RFC 3339 or integer milliseconds.
    func time(_ name: String) throws(LaterbaseError) -> Int64? {
        guard let text = parameters.get(name) else { return nil }
        if let ms = Int64(text) { return ms }
        guard let ms = EventTime.parse(text) else {
            throw LaterbaseError(.badRequest, "\(name) must be an RFC 3339 timestamp or integer milliseconds", details: [.object([("parameter", .string(name))])])
        }
        return ms
    }

    /// A version vector in its wire form; empty when absent.
    func versionVector(_ name: String) throws(LaterbaseError) -> VersionVector {
        guard let text = parameters.get(name) else { return VersionVector() }
        do {
            return try VersionVector(parsing: text)
        } catch {
            throw LaterbaseError(.badRequest, "\(name): \(error.description)", details: [.object([("parameter", .string(name))])])
        }
    }
}
