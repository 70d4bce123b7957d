import Foundation
import Hummingbird
import LaterbaseCore
import ServiceLifecycle
import UnixSignals
import Logging
import NIOCore

/// A request's context: Hummingbird's, and who sent the request.
public struct LaterbaseRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer (what an open node tells its callers apart by).
    public let remoteAddress: SocketAddress?
    /// Set by ``AccessMiddleware`` from the bearer token (``Principal/open`` on a node without
    /// credentials); nil only for `/healthz`, which needs none.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Whom per-caller limits count against: the principal's name, or on an open node (where
    /// everyone is ``Principal/open``) the caller's address.
    func holder() throws(LaterbaseError) -> String {
        let principal = try caller()
        guard principal == .open else { return "principal:\(principal.name)" }
        return "address:\(remoteAddress?.ipAddress ?? "unknown")"
    }

    /// Who sent the request; 401 if no one was established.
    public func caller() throws(LaterbaseError) -> Principal {
        guard let principal else { throw LaterbaseError(.unauthorized, "this request needs credentials: Authorization: Bearer <token>") }
        return principal
    }
}

/// Establishes who sent each request from its `Authorization: Bearer` token before any route
/// runs: 401 `unauthorized` without a known token, except for `GET /healthz`. What the principal
/// may do there is checked by the routes, with ``Principal``'s rules. Tokens are never logged.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = LaterbaseRequestContext
    let access: Access

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Liveness needs no credentials (CONTRACT.md), nor the console's static files: a browser
        // cannot send a bearer token when it opens a page, the files are the same for everyone
        // and hold no data, and the page asks the API with the token a person pastes.
        if Route.isPublic(request.uri.path) { return try await next(request, context) }
        let token = Self.bearerToken(request.headers[.authorization])
        guard let principal = access.principal(token: token) else {
            throw LaterbaseError(.unauthorized, token == nil ? "this node needs credentials: Authorization: Bearer <token>" : "the bearer token is not known to this node")
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }


    /// The token of an `Authorization: Bearer <token>` header.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

/// Re-reads the credentials file on SIGHUP. An invalid file leaves the principals in force and is
/// logged; requests in flight keep the principal they started with.
struct CredentialsReloadService: Service {
    let access: Access
    let logger: Logger
    /// ``LaterbaseServer/reloadCredentials()``.
    let reload: @Sendable () throws -> Void

    func run() async throws {
        guard let path = access.path else {
            try? await gracefulShutdown()
            return
        }
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try reload()
                logger.notice("credentials reloaded", metadata: ["file": "\(path)"])
            } catch {
                logger.error("credentials not reloaded; the principals in force stay", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
    }
}
