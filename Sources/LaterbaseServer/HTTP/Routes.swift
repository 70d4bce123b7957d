import HTTPTypes
import Hummingbird
import LaterbaseCore

/// Every route of the contract, once. The route structs register their handlers through it
/// (``Router/on(_:use:)``); the 405's `Allow` (``ErrorMiddleware``) and the paths that need no
/// credentials (``AccessMiddleware``) are derived from it; a test holds it equal to
/// `openapi.json`'s paths and methods.
struct Route: Sendable, Hashable {
    let method: HTTPRequest.Method
    /// Hummingbird's pattern: `:name` one segment, `**` the rest (one segment or more).
    let pattern: String
    /// The path as `openapi.json` names it.
    let documented: String
    /// Served to anyone, without a token.
    let isPublic: Bool
    /// A pattern with no parameter: matched by equality.
    let isLiteral: Bool

    init(_ method: HTTPRequest.Method, _ pattern: String, documented: String? = nil, public isPublic: Bool = false) {
        self.method = method
        self.pattern = pattern
        self.documented = documented ?? pattern
        self.isPublic = isPublic
        isLiteral = !pattern.contains(":") && !pattern.contains("*")
    }

    static let writeEvents = Route(.post, "/e/:root", documented: "/e/{root}")
    static let feed = Route(.get, "/e/:root", documented: "/e/{root}")
    static let aggregates = Route(.get, "/a/:root", documented: "/a/{root}")
    static let aggregate = Route(.get, "/a/:root/**", documented: "/a/{root}/{id}")
    static let history = Route(.get, "/h/:root/**", documented: "/h/{root}/{id}")
    static let console = Route(.get, "/console", public: true)
    static let consoleScript = Route(.get, "/console/console.js", public: true)
    static let consoleStyle = Route(.get, "/console/console.css", public: true)
    static let health = Route(.get, "/healthz", public: true)
    static let metrics = Route(.get, "/metrics")
    static let node = Route(.get, "/node")
    static let stats = Route(.get, "/stats")
    static let openAPI = Route(.get, "/openapi.json")

    /// The contract's routes (an application's own, `ServerConfiguration.routes`, are not here).
    static let all: [Route] = [
        writeEvents, feed, aggregates, aggregate, history, console, consoleScript, consoleStyle, health, metrics, node, stats, openAPI,
    ]

    /// Whether `path` is one this route's pattern takes.
    func matches(_ path: String) -> Bool {
        if isLiteral { return path == pattern }  // every public route, asked once per request
        let want = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let have = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var w = want.startIndex, h = have.startIndex
        while w < want.endIndex {
            let part = want[w]
            if part == "**" { return h < have.endIndex && have[h...].allSatisfy { !$0.isEmpty } }
            guard h < have.endIndex, !have[h].isEmpty, part.hasPrefix(":") || part == have[h] else { return false }
            w += 1
            h += 1
        }
        return h == have.endIndex
    }

    /// The methods the contract takes on `path` (for 405's `Allow`), or nil for a path it does not have.
    static func allowedMethods(_ path: String) -> String? {
        var methods: [String] = []
        for route in all where route.matches(path) && !methods.contains(route.method.rawValue) { methods.append(route.method.rawValue) }
        return methods.isEmpty ? nil : methods.joined(separator: ", ")
    }

    /// Whether `path` is served without credentials: a public route's, or any under the console's
    /// folder (a file it does not have is a 404 to anyone, not a 401).
    static func isPublic(_ path: String) -> Bool {
        all.contains { $0.isPublic && $0.matches(path) } || path.hasPrefix("/console/")
    }
}

extension Router {
    /// Registers `handler` for one of the contract's routes (``Route``).
    @discardableResult
    func on(_ route: Route, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) -> Self {
        on(RouterPath(route.pattern), method: route.method, use: handler)
    }

    /// A route that reads `store`: the handler runs once what is committed is durable
    /// (``LaterbaseCore/EventStore/awaitReadable()``), so its read waits for no sync and a slow
    /// disk holds the request, not a thread of the pool.
    @discardableResult
    func on(_ route: Route, reading store: EventStore, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) -> Self {
        on(route) { request, context in
            try await store.awaitReadable()
            return try await handler(request, context)
        }
    }
}
