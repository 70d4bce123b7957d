import Foundation
import LaterbaseCore
import Testing

/// The OpenAPI description against a live `laterbase` process, checked by schemathesis (PyPI;
/// it reads the repository's file, which the node serves as it is to any principal;
/// `ops/setup.sh` installs it): no server errors, every status and body as documented, 405 for
/// undeclared methods, and schema-violating requests refused, for each of the node's roots.
@Suite struct OpenAPITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let document = repository.appendingPathComponent("Sources/LaterbaseServer/Resources/openapi.json").path

    /// A node with an admin and a monitor, its admin token, and a folder for files.
    func withNode(_ body: (ServerProcess, String, String) async throws -> Void) async throws {
        let folder = temporaryFolder()
        let admin = AccessTests.Entry("ops", "admin"), monitor = AccessTests.Entry("prometheus", "monitor")
        let credentials = folder + "/credentials.json"
        try AccessTests.file([admin, monitor]).write(toFile: credentials, atomically: true, encoding: .utf8)
        let server = try await ServerProcess(data: folder + "/data", arguments: ["--credentials", credentials])
        try await body(server, admin.token, folder)
        server.signal(SIGTERM)
        _ = await server.waitForExit()
    }

    @Test func theNodeServesTheRepositorysDocumentToAnyPrincipal() async throws {
        try await withNode { server, token, _ in
            // CONTRACT.md: with credentials every request but /healthz names a principal.
            #expect(try await HTTP(port: server.port).get("/openapi.json").status == 401)
            let served = try await HTTP(port: server.port, token: token).get("/openapi.json")
            #expect(served.status == 200)
            let kept = try #require(FileManager.default.contents(atPath: Self.document))
            #expect(served.body == Array(kept), "GET /openapi.json is the file in the repository")
            let json = try JSONParser.parse(Array(kept))
            #expect(json["openapi"]?.stringValue == "3.1.0")
        }
    }

    @Test(arguments: ["notes", "shipments", "inventory"])
    func schemathesisFindsNothing(root: String) async throws {
        try await withNode { server, token, folder in
            let config = folder + "/schemathesis.toml"
            // Every operation's {root} is this node's root (a random one only ever meets 404);
            // 413 is this contract's refusal of a batch over 10,000 events.
            try """
                [parameters]
                "path.root" = "\(root)"

                [checks.negative_data_rejection]
                expected-statuses = [400, 401, 403, 404, 405, 409, 413, 422]
                """.write(toFile: config, atomically: true, encoding: .utf8)
            // One worker: with two, hypothesis parsed lambdas on two threads at once and CPython
            // 3.11's ast.parse failed ("AST constructor recursion depth mismatch"), a runtime
            // error of the tool, not a finding; one takes as long here.
            let (status, output) = try await runToEnd("/usr/bin/env", [
                "schemathesis", "--config-file", config, "run", Self.document, "--url", "http://127.0.0.1:\(server.port)",
                "-H", "Authorization: Bearer \(token)",
                "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,unsupported_method,negative_data_rejection",
                "--max-examples", "40", "--seed", "1", "--workers", "1", "--no-color",
            ])
            #expect(status == 0, "schemathesis failed on \(root):\n\(output.suffix(8000))")
            #expect(output.contains("passed"), "schemathesis ran no test case:\n\(output.suffix(2000))")
            // It wrote through the API, and the node is well afterwards.
            let http = HTTP(port: server.port).with(token: token)
            #expect(try await http.get("/healthz").status == 200)
            let stats = try await http.get("/stats")
            #expect(stats.status == 200)
            if root == "notes", case .array(let roots)? = stats.json["roots"] {
                let notes = roots.first { $0["root"]?.stringValue == "notes" }
                #expect((notes?["events"]?.int64Value ?? 0) > 0, "schemathesis stored no event in notes: \(stats.json)")
            }
        }
    }

    @Test func withoutATokenEveryAnswerIsAsDocumented() async throws {
        try await withNode { server, _, folder in
            let config = folder + "/schemathesis.toml"
            try "[parameters]\n\"path.root\" = \"notes\"\n".write(toFile: config, atomically: true, encoding: .utf8)
            // One worker: with two, hypothesis parsed lambdas on two threads at once and CPython
            // 3.11's ast.parse failed ("AST constructor recursion depth mismatch"), a runtime
            // error of the tool, not a finding; one takes as long here.
            let (status, output) = try await runToEnd("/usr/bin/env", [
                "schemathesis", "--config-file", config, "run", Self.document, "--url", "http://127.0.0.1:\(server.port)",
                "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
                "--max-examples", "10", "--seed", "1", "--no-color",
            ])
            #expect(status == 0, "schemathesis failed without a token:\n\(output.suffix(8000))")
        }
    }
}
