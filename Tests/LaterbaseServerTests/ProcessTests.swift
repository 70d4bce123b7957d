import Foundation
import NIOCore
import LaterbaseCore
import Synchronization
import Testing

/// Acknowledged event ids, from several concurrent clients.
final class Acknowledged: Sendable {
    private let ids = Mutex<[String]>([])
    func add(_ new: [String]) { ids.withLock { $0 += new } }
    var all: [String] { ids.withLock { $0 } }
}

/// Clients that POST to `http` until they see failures (or `runFor` has passed); every id in a
/// 2xx response is recorded.
func load(
    _ http: HTTP, clients: Int, acknowledged: Acknowledged, stopAfter: Duration, runFor: Duration? = nil, requestTimeout: TimeAmount = .seconds(3)
) async {
    let start = ContinuousClock.now
    let limit = runFor ?? stopAfter + .seconds(5)
    await withTaskGroup(of: Void.self) { group in
        for client in 0..<clients {
            group.addTask {
                var n = 0
                var failures = 0
                while ContinuousClock.now - start < limit && failures < 3 {
                    n += 1
                    let size = 1 + (n + client) % 5
                    let batch = (0..<size).map { i in #"{"aggregate":"c\#(client)-\#(i % 3)","type":"t","data":{"n":\#(n),"i":\#(i)}}"# }
                    do {
                        let r = try await http.request(.POST, "/e/notes", body: Array(("[" + batch.joined(separator: ",") + "]").utf8), timeout: requestTimeout)
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

/// Starts `laterbase` on `data`, loads it from 8 clients, sends `sig` mid-load, and returns
/// what was acknowledged and how the process ended.
func loadAndSignal(_ data: String, _ sig: Int32) async throws -> (acknowledged: [String], status: Int32?, log: String) {
    let server = try await ServerProcess(data: data)
    let acknowledged = Acknowledged()
    async let loading: Void = load(HTTP(port: server.port), clients: 8, acknowledged: acknowledged, stopAfter: .seconds(10))
    // Mid-load: once something is written (a loaded machine may take a while to get there).
    let started = ContinuousClock.now
    try await Task.sleep(for: .milliseconds(500))
    while acknowledged.all.count < 200 && ContinuousClock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(50)) }
    server.signal(sig)
    let status = await server.waitForExit()
    await loading
    return (acknowledged.all, status, server.logText)
}

/// Restarts `laterbase` on `data` and checks every acknowledged event is there exactly once.
func expectAllThere(_ data: String, _ acked: [String]) async throws -> ServerProcess {
    #expect(acked.count > 100, "the load should have written something first")
    let restarted = try await ServerProcess(data: data)
    let http = HTTP(port: restarted.port)
    #expect(try await http.get("/healthz").status == 200)
    let (events, head) = try await http.allEvents("notes")
    let ids = events.compactMap { $0["id"]?.stringValue }
    #expect(Set(ids).count == ids.count, "each event exactly once")
    #expect(Set(acked).isSubset(of: Set(ids)), "every acknowledged event survived")
    #expect(head == "hq-1:\(ids.count)")
    return restarted
}

/// Real `laterbase` processes: killed with SIGKILL, stopped with SIGTERM, restarted.
@Suite(.serialized) struct ProcessTests {
    @Test func killedWithSIGKILLUnderLoadLosesNothingAcknowledged() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (acked, _, _) = try await loadAndSignal(data, SIGKILL)
        let restarted = try await expectAllThere(data, acked)
        // The store opened cleanly and goes on from its head.
        let http = HTTP(port: restarted.port)
        let head = try await http.allEvents("notes").head
        let next = try await http.post("/e/notes", #"{"aggregate":"after","type":"t"}"#)
        #expect(next.status == 201)
        #expect(next.json["events"]?.arrayFirst?["seq"] == .integer(Int(head.split(separator: ":").last!)! + 1))
        restarted.signal(SIGTERM)
        #expect(await restarted.waitForExit() == 0)
    }

    @Test func SIGTERMUnderLoadExitsZeroAndLosesNothingAcknowledged() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (acked, status, log) = try await loadAndSignal(data, SIGTERM)
        #expect(status == 0, "\(log)")
        #expect(log.contains("writer stopped: queue drained"))
        let restarted = try await expectAllThere(data, acked)
        restarted.signal(SIGINT)
        #expect(await restarted.waitForExit() == 0)
    }
    @Test func aGeneratedReplicaIDIsKeptInTheDataFolder() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        var first: ServerProcess? = try await ServerProcess(data: data, replica: nil)
        let replica = try await HTTP(port: first!.port).get("/node").json["replica"]?.stringValue
        #expect(replica?.hasPrefix("node-") == true)
        first!.signal(SIGTERM)
        #expect(await first!.waitForExit() == 0)
        first = nil
        let second = try await ServerProcess(data: data, replica: nil)
        #expect(try await HTTP(port: second.port).get("/node").json["replica"]?.stringValue == replica)
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    @Test func helpDescribesTheServeOptions() async throws {
        let text = try await runLaterbase(["serve", "--help"]).output
        for option in ["--data", "--http", "--replica-id", "--root", "--max-skew", "--log-level", "--max-transaction-events"] {
            #expect(text.contains(option), "\(option)")
        }
    }

    @Test func aTransactionLimitBelowABatchIsRefusedWithAClearMessage() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for bad in ["9999", "100001"] {
            let (status, output) = try await runLaterbase(["serve", "--data", folder, "--max-transaction-events", bad])
            #expect(status != 0)
            #expect(output.contains("--max-transaction-events must be from 10000 to 100000"), "\(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/data.mdb"), "nothing was opened")
    }
}
