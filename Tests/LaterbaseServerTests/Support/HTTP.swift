import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import LaterbaseCore
import NIOCore
import NIOHTTP1

/// A response read whole.
struct HTTPResult: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var json: JSON { (try? JSONParser.parse(body)) ?? .null }
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The contract's error code, for an error response.
    var error: String? { json["error"]?.stringValue }
}

/// A real HTTP client on loopback.
struct HTTP: Sendable {
    let base: String
    /// Sent as `Authorization: Bearer <token>` when set.
    var token: String?
    /// The client requests go through (one that trusts a test CA, for https).
    var client: HTTPClient = .shared
    /// When set, requests go to the router in process, with no socket (``withRouter(configure:_:)``).
    var router: (any TestClientProtocol)?

    init(port: Int, token: String? = nil) {
        base = "http://127.0.0.1:\(port)"
        self.token = token
    }

    /// A client of a node's router, through HummingbirdTesting: the HTTP layer alone.
    init(router: any TestClientProtocol) {
        base = ""
        self.router = router
    }

    init(base: String, token: String? = nil, client: HTTPClient) {
        self.base = base
        self.token = token
        self.client = client
    }

    /// The same client presenting `token`.
    func with(token: String?) -> HTTP {
        var copy = self
        copy.token = token
        return copy
    }

    func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(30)) async throws -> HTTPResult {
        if let router { return try await routed(router, method, path, body: body, headers: headers) }
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 256 << 20)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Array(buffer.readableBytesView))
    }

    private func routed(_ router: any TestClientProtocol, _ method: HTTPMethod, _ path: String, body: [UInt8]?, headers: [(String, String)]) async throws -> HTTPResult {
        var fields = HTTPFields()
        for (name, value) in headers { if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) } }
        if let token { fields[.authorization] = "Bearer \(token)" }
        if body != nil { fields[.contentType] = "application/json" }
        let response = try await router.executeRequest(
            uri: path, method: HTTPRequest.Method(rawValue: method.rawValue)!, headers: fields, body: body.map { ByteBuffer(bytes: $0) })
        var converted = HTTPHeaders()
        for field in response.headers { converted.add(name: field.name.rawName, value: field.value) }
        return HTTPResult(status: response.status.code, headers: converted, body: Array(response.body.readableBytesView))
    }

    func post(_ path: String, _ body: String) async throws -> HTTPResult { try await request(.POST, path, body: Array(body.utf8)) }
    func get(_ path: String, headers: [(String, String)] = []) async throws -> HTTPResult { try await request(.GET, path, headers: headers) }

    /// Every event of `root` via the feed, NDJSON, page by page.
    func allEvents(_ root: String, pageSize: Int = 10_000) async throws -> (events: [JSON], head: String) {
        var vv = ""
        var events: [JSON] = []
        while true {
            let r = try await get("/e/\(root)?limit=\(pageSize)&vv=\(vv.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")", headers: [("Accept", "application/x-ndjson")])
            guard r.status == 200 else { throw FeedError(status: r.status, body: r.text) }
            let lines = r.text.split(separator: "\n").map { try! JSONParser.parse(Array($0.utf8)) }
            events += lines.dropLast()
            let last = lines.last!
            vv = last["vv"]!.stringValue!
            if last["more"] == .bool(false) { return (events, last["head"]!.stringValue!) }
        }
    }
}

struct FeedError: Error {
    let status: Int
    let body: String
}
