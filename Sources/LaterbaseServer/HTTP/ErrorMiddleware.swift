import HTTPTypes
import Hummingbird
import LaterbaseCore
import Logging

/// Counts every refusal by its code, and makes every error one of the contract's: Hummingbird's
/// own (no route, 405, a body over the limit) and anything unexpected (500, logged) become a
/// ``LaterbaseCore/LaterbaseError``, which Hummingbird renders (it is an `HTTPResponseError`).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: StoreMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as LaterbaseError {
            metrics.error(error.code)
            throw error
        } catch let error as any HTTPResponseError {
            let mapped: LaterbaseError
            switch error.status.code {
            case 404, 405:
                if let allowed = Route.allowedMethods(request.uri.path), !allowed.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == "\(request.method)" }) {
                    let refusal = LaterbaseError(.methodNotAllowed, "\(request.uri.path) takes \(allowed), not \(request.method)")
                    metrics.error(refusal.code)
                    throw MethodNotAllowed(refusal: refusal, allowed: allowed)
                } else {
                    mapped = LaterbaseError(.notFound, "no route for \(request.method) \(request.uri.path)")
                }
            case 413: mapped = LaterbaseError(.tooLarge, "the body is larger than the limit")
            default: mapped = LaterbaseError(.badRequest, "\(error)")
            }
            metrics.error(mapped.code)
            throw mapped
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            metrics.error(.internal)
            throw LaterbaseError(.internal, "internal error")
        }
    }
}

/// How a refusal of the core becomes an HTTP response: the contract's status for its code, its
/// JSON body, and the headers the code calls for.
extension LaterbaseError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch code {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .unknownRoot, .notFound: .notFound
        case .tooLarge: .contentTooLarge
        case .invalidEvent: .unprocessableContent
        case .gap, .conflict: .conflict
        case .overloaded, .unavailable: .serviceUnavailable
        case .storageFull: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .internal: .internalServerError
        case .methodNotAllowed: .methodNotAllowed
        case .positionExpired: .gone
        case .tooManyRequests: .tooManyRequests
        default: .badRequest  // an application's own code: a refusal of the request
        }
    }

    public var headers: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        switch code {
        case .overloaded, .unavailable, .tooManyRequests: headers[.retryAfter] = "1"
        case .unauthorized: headers[.wwwAuthenticate] = "Bearer"
        default: break
        }
        return headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// 405: the contract's refusal, with the `Allow` header the route table gives.
struct MethodNotAllowed: HTTPResponseError {
    let refusal: LaterbaseError
    let allowed: String

    var status: HTTPResponse.Status { refusal.status }

    var headers: HTTPFields {
        var headers = refusal.headers
        headers[.allow] = allowed
        return headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try refusal.response(from: request, context: context)
        response.headers[.allow] = allowed
        return response
    }
}

extension Response {
    /// A JSON response from bytes already encoded.
    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, contentType: String = "application/json") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
