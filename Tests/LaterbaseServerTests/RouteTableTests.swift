import Foundation
import Hummingbird
import HummingbirdTesting
import LaterbaseCore
import LaterbaseDemo
@testable import LaterbaseServer
import Logging
import Testing

/// The one route table (``Route``) against what the router serves and what `openapi.json` says,
/// through HummingbirdTesting's router: no sockets, the HTTP layer alone.
@Suite("The route table")
struct RouteTableTests {
    /// A node on a temporary folder whose only principal is an admin with token `t`.
    static func withRouter(
        configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let credentials = folder + "/credentials.json"
        try #"{"principals":[{"name":"ops","role":"admin","token_sha256":"\#(SHA256.hex("t"))"}]}"#.write(toFile: credentials, atomically: true, encoding: .utf8)
        var configuration = ServerConfiguration()
        configuration.ingest = nil
        configuration.publish = nil
        configuration.dataDirectory = folder + "/data"
        configuration.store.mapSize = 1 << 30
        configuration.access = try Access(credentialsFile: credentials)
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let node = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: configuration, logger: logger)
        try await Application(router: node.makeRouter(), logger: logger).test(.router, body)
        await node.shutdown()
        try await node.run()  // gives back the folder
    }

    /// A concrete path for a route's pattern.
    static func path(_ route: Route) -> String {
        route.pattern.replacingOccurrences(of: ":root", with: "notes").replacingOccurrences(of: "**", with: "n-1")
    }

    @Test("the table lists exactly the paths and methods openapi.json documents")
    func tableIsTheDocument() throws {
        let document = try JSONParser.parse(PackageResources.openapi_json)
        guard case .object(let paths)? = document["paths"] else { Issue.record("no paths"); return }
        var documented: Set<String> = []
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, _) in operations where ["get", "post", "put", "patch", "delete", "head"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(Set(Route.all.map { "\($0.method.rawValue) \($0.documented)" }) == documented)
    }

    @Test("every route in the table is served; any other method on its path is 405 with Allow from the table; public routes need no token")
    func everyRouteIsServed() async throws {
        try await Self.withRouter { client in
            for route in Route.all {
                let path = Self.path(route)
                try await client.execute(uri: path, method: route.method, headers: [.authorization: "Bearer t"], body: ByteBuffer(string: "[]")) { response in
                    let body = String(buffer: response.body)
                    #expect(!body.contains("no route for"), "\(route.method) \(path): \(response.status) \(body)")
                    #expect(response.status != .methodNotAllowed, "\(route.method) \(path)")
                }
                let allowed = Route.all.filter { $0.matches(path) }.map(\.method.rawValue)
                for method in [HTTPRequest.Method.put, .delete, .patch] {
                    try await client.execute(uri: path, method: method, headers: [.authorization: "Bearer t"]) { response in
                        #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                        #expect(response.headers[.allow] == allowed.joined(separator: ", "), "\(method) \(path)")
                    }
                }
                try await client.execute(uri: path, method: route.method, body: ByteBuffer(string: "[]")) { response in
                    #expect((response.status == .unauthorized) == !route.isPublic, "\(route.method) \(path) without a token: \(response.status)")
                }
            }
            // A path of no route is 404, not 405, whatever the method.
            try await client.execute(uri: "/nowhere", method: .delete, headers: [.authorization: "Bearer t"]) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("patterns take one segment for :name and one or more for **, never an empty one")
    func patterns() {
        #expect(Route.aggregate.matches("/a/notes/n-1") && Route.aggregate.matches("/a/notes/n/1"))
        #expect(!Route.aggregate.matches("/a/notes") && !Route.aggregate.matches("/a/notes/"))
        #expect(Route.feed.matches("/e/notes") && !Route.feed.matches("/e/notes/x") && !Route.feed.matches("/e/"))
        #expect(Route.allowedMethods("/e/notes") == "POST, GET")
        #expect(Route.allowedMethods("/nowhere") == nil)
        #expect(Route.isPublic("/healthz") && Route.isPublic("/console/console.js") && !Route.isPublic("/metrics"))
    }

    struct Unexpected: Error {}

    @Test("an application's own refusal code is answered 400 with its code and counted; anything else it throws is the contract's 500")
    func anApplicationsOwnCodes() async throws {
        try await Self.withRouter(configure: { configuration in
            configuration.routes = { router in
                router.post("/app/reserve") { _, _ -> Response in throw LaterbaseError(.outOfStock, "SKU-1 has none left") }
                router.get("/app/broken") { _, _ -> Response in throw Unexpected() }
            }
        }) { client in
            let auth: HTTPFields = [.authorization: "Bearer t"]
            try await client.execute(uri: "/app/reserve", method: .post, headers: auth) { response in
                #expect(response.status == .badRequest)
                let body = try JSONParser.parse(Array(buffer: response.body))
                #expect(body["error"] == .string("out_of_stock") && body["message"] == .string("SKU-1 has none left"))
            }
            try await client.execute(uri: "/app/broken", method: .get, headers: auth) { response in
                #expect(response.status == .internalServerError)
                let body = try JSONParser.parse(Array(buffer: response.body))
                #expect(body["error"] == .string("internal"))
            }
            try await client.execute(uri: "/metrics", method: .get, headers: auth) { response in
                let text = String(buffer: response.body)
                #expect(text.contains(#"laterbase_errors_total{code="out_of_stock"} 1"#), "\(text.split(separator: "\n").filter { $0.contains("errors_total") })")
                #expect(text.contains(#"laterbase_errors_total{code="internal"} 1"#))
            }
        }
    }
}

extension LaterbaseError.Code {
    /// An application's own code, as one would add it.
    static let outOfStock = Self("out_of_stock")
}
