import Foundation
import Testing

/// The deployment files under `docker/` and `ops/`, checked by the tools that read them
/// (docker-compose, promtool, systemd-analyze) and by running their commands as real processes:
/// see `Tests/Deployment/*.py`.
@Suite("Deployment files", .serialized)
struct DeploymentTests {
    static func script(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Deployment/\(name)").path
    }

    @Test("the compose file is valid and its four services, run from their commands, converge")
    func compose() async throws {
        let (status, output) = try await runToEnd("/usr/bin/env", ["python3", Self.script("compose_check.py"), ServerProcess.binary])
        #expect(status == 0, "\(output)")
        #expect(output.contains("compose check: 4 services"), "\(output)")
    }

    @Test("the alert rules, dashboard and systemd unit check out, and name only metrics a node exports")
    func operations() async throws {
        let (status, output) = try await runToEnd("/usr/bin/env", ["python3", Self.script("ops_check.py"), ServerProcess.binary])
        #expect(status == 0, "\(output)")
        #expect(output.contains("all exported"), "\(output)")
    }

    @Test("laterbase health exits 0 for a healthy node and 1 for none")
    func health() async throws {
        let server = try await ServerProcess(data: temporaryFolder())
        let up = try await runLaterbase(["health", "--url", "http://127.0.0.1:\(server.port)"])
        #expect(up.status == 0, "\(up.output)")
        server.signal(SIGTERM)
        _ = await server.waitForExit()
        let down = try await runLaterbase(["health", "--url", "http://127.0.0.1:\(server.port)", "--timeout-seconds", "2"])
        #expect(down.status == 1 && down.output.contains("unhealthy"), "\(down.output)")
    }
}
