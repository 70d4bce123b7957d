import Foundation
import LaterbaseCore
import Synchronization
import Testing

/// Acknowledged event ids, from several concurrent clients.
final class Acknowledged: Sendable {
    private let ids = Mutex<[String]>([])
    func add(_ new: [String]) { ids.withLock { $0 += new } }
    var all: [String] { ids.withLock { $0 } }
}

/// Clients that POST to `http` until they see failures; every id in a 2xx response is recorded.
func load(_ http: HTTP, clients: Int, acknowledged: Acknowledged, stopAfter: Duration) async {
    let start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for client in 0..<clients {
            group.addTask {
                var n = 0
                var failures = 0
                while ContinuousClock.now - start < stopAfter + .seconds(5) && failures < 3 {
                    n += 1
                    let size = 1 + (n + client) % 5
                    let batch = (0..<size).map { i in #"{"aggregate":"c\#(client)-\#(i % 3)","type":"t","data":{"n":\#(n),"i":\#(i)}}"# }
                    do {
                        let r = try await http.request(.POST, "/e/notes", body: Array(("[" + batch.joined(separator: ",") + "]").utf8), timeout: .seconds(3))
                        if r.status == 201, case .array(let events) = r.json["events"] {
                            acknowledged.add(events.compactMap { $0["id"]?.stringValue })
                        } else if r.status >= 500 {
                            failures += 1
                        }
                    } catch {
                        failures += 1
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
        }
    }
}

/// Real `laterbase` processes: killed with SIGKILL, stopped with SIGTERM, restarted.
@Suite(.serialized) struct ProcessTests {
    @Test func killedWithSIGKILLUnderLoadLosesNothingAcknowledged() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try ServerProcess(data: data)
        let http = HTTP(port: server.port)
        let acknowledged = Acknowledged()
        async let loading: Void = load(http, clients: 8, acknowledged: acknowledged, stopAfter: .seconds(1))
        try await Task.sleep(for: .milliseconds(1500))
        server.signal(SIGKILL)
        _ = server.waitForExit()
        await loading
        let acked = acknowledged.all
        #expect(acked.count > 100, "the load should have written something before the kill")

        let restarted = try ServerProcess(data: data)
        let after = HTTP(port: restarted.port)
        #expect(try await after.get("/healthz").status == 200)
        let (events, head) = try await after.allEvents("notes")
        let ids = events.compactMap { $0["id"]?.stringValue }
        #expect(Set(ids).count == ids.count, "each event exactly once")
        #expect(Set(acked).isSubset(of: Set(ids)), "every acknowledged event survived")
        #expect(head == "hq-1:\(ids.count)")
        // The store opened cleanly and goes on from its head.
        let next = try await after.post("/e/notes", #"{"aggregate":"after","type":"t"}"#)
        #expect(next.status == 201)
        #expect(next.json["head"] == .string("hq-1:\(ids.count + 1)"))
        restarted.signal(SIGTERM)
        #expect(restarted.waitForExit() == 0)
    }

    @Test func SIGTERMUnderLoadExitsZeroAndLosesNothingAcknowledged() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try ServerProcess(data: data)
        let http = HTTP(port: server.port)
        let acknowledged = Acknowledged()
        async let loading: Void = load(http, clients: 8, acknowledged: acknowledged, stopAfter: .seconds(1))
        try await Task.sleep(for: .milliseconds(1500))
        server.signal(SIGTERM)
        let status = server.waitForExit()
        await loading
        #expect(status == 0, "\(server.logText)")
        #expect(server.logText.contains("writer stopped: queue drained"))
        let acked = acknowledged.all
        #expect(acked.count > 100)

        let restarted = try ServerProcess(data: data)
        let (events, head) = try await HTTP(port: restarted.port).allEvents("notes")
        let ids = events.compactMap { $0["id"]?.stringValue }
        #expect(Set(ids).count == ids.count)
        #expect(Set(acked).isSubset(of: Set(ids)))
        #expect(head == "hq-1:\(ids.count)")
        restarted.signal(SIGINT)
        #expect(restarted.waitForExit() == 0)
    }

    @Test func helpDescribesTheServeOptions() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        process.arguments = ["serve", "--help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for option in ["--data", "--http", "--replica-id", "--root", "--max-skew", "--log-level"] {
            #expect(text.contains(option), "\(option)")
        }
    }
}
