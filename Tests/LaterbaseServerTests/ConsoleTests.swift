import Foundation
import Testing

/// The console in headless Chromium (Selenium), against two real `laterbase` processes:
/// `Tests/Console/console_check.py` says what it checks.
@Suite("Console in a browser", .serialized)
struct ConsoleTests {
    @Test("every view loads without console errors and shows what the API says; a POST reaches the tail within a second")
    func console() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Console/console_check.py").path
        let (status, output) = try await runToEnd("/usr/bin/env", ["python3", script, ServerProcess.binary])
        #expect(status == 0, "\(output)")
        #expect(output.contains("console check: every view checked"), "\(output)")
    }

    @Test("the console's files are served without a token; everything else still needs one")
    func files() async throws {
        try await AccessTests().withCredentials { http in
            for (path, type) in [("/console", "text/html"), ("/console/console.js", "text/javascript"), ("/console/console.css", "text/css")] {
                let r = try await http.get(path)
                #expect(r.status == 200 && r.headers.first(name: "content-type")?.hasPrefix(type) == true, "\(path): \(r.status)")
                #expect(r.headers.first(name: "content-security-policy")?.contains("default-src 'self'") == true)
                #expect(r.headers.first(name: "content-security-policy")?.contains("frame-ancestors 'none'") == true, "no other site frames the console")
                #expect(r.headers.first(name: "x-content-type-options") == "nosniff")
            }
            #expect(try await http.get("/h/notes/x").status == 401)
            #expect(try await http.get("/console/other").status == 404)
        }
    }
}
