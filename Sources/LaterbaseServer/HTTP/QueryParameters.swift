import Hummingbird
import LaterbaseCore

/// Reads query parameters and checks them with ``ReadParameters``, refusing malformed ones with
/// 400 `bad_request`.
struct QueryParameters {
    let parameters: Hummingbird.Parameters

    init(_ request: Request) { parameters = request.uri.queryParameters }

    /// An integer in `range`, `default` when absent.
    func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(LaterbaseError) -> Int {
        guard let text = parameters.get(name) else { return value }
        return try ReadParameters.integer(text, name: name, in: range)
    }

    /// A time: RFC 3339 or integer milliseconds; nil when absent.
    func time(_ name: String) throws(LaterbaseError) -> Int64? {
        guard let text = parameters.get(name) else { return nil }
        return try ReadParameters.time(text, name: name)
    }

    /// An aggregate id; nil when absent (present but empty is refused).
    func aggregateID(_ name: String) throws(LaterbaseError) -> String? {
        guard let text = parameters.get(name) else { return nil }
        return try ReadParameters.aggregateID(text, name: name)
    }

    /// A `since` position token: nil when absent, `.some(nil)` for the beginning (empty).
    func position(_ name: String) throws(LaterbaseError) -> Position?? {
        guard let text = parameters.get(name) else { return nil }
        return .some(try ReadParameters.position(text, name: name))
    }

    /// `true` or `false`; absent is `false`, anything else 400.
    func flag(_ name: String) throws(LaterbaseError) -> Bool {
        switch parameters.get(name) {
        case nil, "false": return false
        case "true": return true
        case let other?: throw LaterbaseError(.badRequest, "\(name) must be true or false, not '\(other)'")
        }
    }

    /// A version vector in its wire form; empty when absent.
    func versionVector(_ name: String) throws(LaterbaseError) -> VersionVector {
        guard let text = parameters.get(name) else { return VersionVector() }
        return try ReadParameters.versionVector(text, name: name)
    }
}
