import HTTPTypes
import Hummingbird
import LaterbaseCore
import Logging

/// Turns every error into the contract's JSON body and status; counts refusals by code.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: StoreMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as LaterbaseError {
            metrics.error(error.code)
            return Self.response(error)
        } catch let error as any HTTPResponseError {
            let mapped: LaterbaseError
            switch error.status.code {
            case 404: mapped = LaterbaseError(.notFound, "no route for \(request.method) \(request.uri.path)")
            case 405: mapped = LaterbaseError(.badRequest, "method \(request.method) is not allowed on \(request.uri.path)")
            case 413: mapped = LaterbaseError(.tooLarge, "the body is larger than the limit")
            default: mapped = LaterbaseError(.badRequest, "\(error)")
            }
            metrics.error(mapped.code)
            return Self.response(mapped)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            metrics.error(.internal)
            return Self.response(LaterbaseError(.internal, "internal error"))
        }
    }

    static func response(_ error: LaterbaseError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.code == .overloaded || error.code == .unavailable { headers[.retryAfter] = "1" }
        return Response(
            status: HTTPResponse.Status(code: error.code.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: error.body))
        )
    }
}

extension Response {
    /// A JSON response from bytes already encoded.
    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, contentType: String = "application/json") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
