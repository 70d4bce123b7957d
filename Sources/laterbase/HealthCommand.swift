import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `laterbase health`: exits 0 when a node answers `GET /healthz` with 200, 1 otherwise; a
/// container's healthcheck without curl in the image.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 if a node is healthy (GET /healthz answers 200 within the timeout), else 1.")

    @Option(help: "The node's HTTP URL.")
    var url: String = "http://127.0.0.1:8080"
    @Option(name: .customLong("timeout-seconds"), help: "How long to wait for the answer.")
    var timeoutSeconds: Int = 3

    func run() async throws {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let status: UInt
        do {
            let response = try await client.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(Int64(timeoutSeconds)))
            status = response.status.code
        } catch {
            try? await client.shutdown()
            print("unhealthy: \(base)/healthz: \(error)")
            throw ExitCode(1)
        }
        try? await client.shutdown()
        guard status == 200 else {
            print("unhealthy: \(base)/healthz answered \(status)")
            throw ExitCode(1)
        }
        print("healthy: \(base)")
    }
}
