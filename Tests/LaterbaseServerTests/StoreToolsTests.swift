import Foundation
import LaterbaseCore
import Testing

/// `laterbase backup`, `restore`, `export`, `import`, `stats` and the data-folder lock, as
/// processes on real folders beside real serving nodes.
@Suite("Store tools", .serialized)
struct StoreToolsTests {
    /// Pushes batches of `notes` events to a node's ZeroMQ ingest until `stop` is set; returns how many it sent.
    static func pushUntilStopped(ingest: String, stop: Flag) -> Task<Int, any Error> {
        Task.detached {
            let client = try ZMQClient(ingest: ingest, publish: "tcp://127.0.0.1:1")
            defer { client.close() }
            var sent = 0
            while !stop.isSet {
                try client.send(["notes", newEvents(20, aggregate: { "z-\($0 % 5)" }, tag: "zmq").body])
                sent += 20
                try await Task.sleep(for: .milliseconds(5))
            }
            return sent
        }
    }

    @Test("a backup taken during ZeroMQ and HTTP ingest restores under a new replica id and converges with the original")
    func backupRestoreConverge() async throws {
        let a = try await ClusterNode("hq-1")
        let node = try await a.http.get("/node").json
        let ingest = try #require(node["ingest"]?.stringValue)
        let stop = Flag()
        let pushing = Self.pushUntilStopped(ingest: ingest, stop: stop)
        let acknowledged = Acknowledged()
        async let loading: Void = load(a.http, clients: 4, acknowledged: acknowledged, stopAfter: .seconds(4), runFor: .seconds(4))
        // Mid-ingest: once both ways in have written something.
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(20) {
            let events = try await a.http.get("/e/notes?limit=0").json["head"]?.stringValue ?? ""
            if acknowledged.all.count > 100, let n = VersionVectorText.total(events), n > 400 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let backupFile = a.data + "-backup.lbk"
        let backup = try await runLaterbase(["backup", "--data", a.data, "--to", backupFile])
        #expect(backup.status == 0, "\(backup.output)")
        #expect(!FileManager.default.fileExists(atPath: backupFile + ".partial"))
        await loading
        stop.set()
        let pushed = try await pushing.value
        #expect(pushed > 0)

        let restoredData = temporaryFolder()
        let restore = try await runLaterbase(["restore", "--from", backupFile, "--data", restoredData])
        #expect(restore.status == 0, "\(restore.output)")
        #expect(restore.output.contains("was hq-1"), "\(restore.output)")
        // Restoring over a store is refused and changes nothing.
        let again = try await runLaterbase(["restore", "--from", backupFile, "--data", restoredData])
        #expect(again.status != 0 && again.output.contains("already holds a store"), "\(again.output)")

        // The backup holds less than the original took: the rest must come back from the peer.
        let restoredStats = try await runLaterbase(["stats", "--data", restoredData, "--json"])
        let restoredHead = try VersionVector(parsing: Self.head(of: "notes", in: try JSONParser.parse(Array(restoredStats.output.utf8))))
        let originalHead = try VersionVector(parsing: try await a.http.get("/e/notes?limit=0").json["head"]?.stringValue ?? "")
        #expect(restoredHead["hq-1"] > 0 && restoredHead["hq-1"] < originalHead["hq-1"], "backup \(restoredHead), original \(originalHead)")
        let b = try await ServerProcess(data: restoredData, replica: nil, arguments: ["--peer", a.url])
        let bHTTP = HTTP(port: b.port)
        let bNode = try await bHTTP.get("/node").json
        let bReplica = try #require(bNode["replica"]?.stringValue)
        #expect(bReplica != "hq-1" && bReplica.hasPrefix("node-"), "a restored node takes a new replica id, not \(bReplica)")
        // Both sides write after the restore: the restored node under its new id.
        #expect(try await bHTTP.post("/e/notes", #"{"aggregate":"after-restore","type":"t","data":{"on":"b"}}"#).status == 201)
        #expect(try await a.http.post("/e/notes", #"{"aggregate":"after-restore","type":"t","data":{"on":"a"}}"#).status == 201)
        try await converge([a.http, bHTTP], roots: ["notes", "shipments", "inventory"], timeout: .seconds(60))
        let head = try VersionVector(parsing: try await bHTTP.get("/e/notes?limit=0").json["head"]?.stringValue ?? "")
        #expect(head["hq-1"] > 0 && head[bReplica] == 1, "head \(head)")
        // Every event the original acknowledged over HTTP is on the restored node.
        let stored = Set(try await bHTTP.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
        #expect(acknowledged.all.allSatisfy { stored.contains($0) })
        b.signal(SIGTERM)
        _ = await b.waitForExit()
        try? FileManager.default.removeItem(atPath: backupFile)
    }

    static func head(of root: String, in stats: JSON) -> String {
        guard case .array(let roots)? = stats["roots"] else { return "?" }
        return roots.first { $0["root"]?.stringValue == root }?["head"]?.stringValue ?? "?"
    }

    @Test("export, then import into a stopped folder and a running node: the same events and aggregates, idempotent and resumable")
    func exportImportRoundTrip() async throws {
        let a = try await ClusterNode("hq-1")
        // Two origins (one as recorded events, as a replica would send them), back-dated events, two roots.
        for i in 0..<30 {
            let e = #"[{"aggregate":"n-\#(i % 4)","type":"t","data":{"i":\#(i)}},{"aggregate":"SKU-\#(i % 3)","type":"x","data":{"k":\#(i)},"time":"2026-01-0\#(1 + i % 9)T10:00:00Z"}]"#
            #expect(try await a.http.post("/e/notes", e).status == 201)
        }
        var recorded: [String] = []
        for seq in 1...10 {
            recorded.append(#"{"id":"\#(UUID().uuidString.lowercased())","aggregate":"dev","type":"t","data":{"s":\#(seq)},"origin":"truck-7","seq":\#(seq),"hlc":"\#(String(format: "%016llx", (UInt64(1_700_000_000_000) + UInt64(seq)) << 16))"}"#)
        }
        #expect(try await a.http.post("/e/notes", "[" + recorded.joined(separator: ",") + "]").status == 201)
        #expect(try await a.http.post("/e/inventory", #"{"aggregate":"SKU-1@AKL","type":"stock.received","data":{"qty":20}}"#).status == 201)

        let file = a.data + "-notes.ndjson"
        let export = try await runToEnd("/bin/sh", ["-c", "'\(ServerProcess.binary)' export --data '\(a.data)' --root notes > '\(file)'"])
        #expect(export.status == 0, "\(export.output)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 70)
        // Feed order: by (hlc, origin, seq), as GET /e serves them.
        let served = try await a.http.allEvents("notes").events
        #expect(lines.map { try? JSONParser.parse(Array($0.utf8)) } == served.map { Optional($0) })

        // Into a stopped node's folder, twice: the second stores nothing.
        let folder = temporaryFolder()
        let first = try await runLaterbase(["import", "--data", folder, "--root", "notes", "--file", file, "--batch", "7"])
        #expect(first.status == 0 && first.output.contains("import notes: 70 events stored"), "\(first.output)")
        let second = try await runLaterbase(["import", "--data", folder, "--root", "notes", "--file", file])
        #expect(second.status == 0 && second.output.contains("import notes: 0 events stored"), "\(second.output)")
        let c = try await ServerProcess(data: folder, replica: "other-1")
        let cHTTP = HTTP(port: c.port)
        #expect(try await cHTTP.allEvents("notes").events == served)
        #expect(try await allAggregates(cHTTP, "notes") == allAggregates(a.http, "notes"))

        // Into a running node over HTTP, interrupted after half: the re-run sends only the rest.
        let d = try await ClusterNode("hq-d")
        let half = a.data + "-half.ndjson"
        try (lines.prefix(35).joined(separator: "\n") + "\n").write(toFile: half, atomically: true, encoding: .utf8)
        let partial = try await runLaterbase(["import", "--url", d.url, "--root", "notes", "--file", half])
        #expect(partial.status == 0 && partial.output.contains("35 events stored"), "\(partial.output)")
        let resumed = try await runLaterbase(["import", "--url", d.url, "--root", "notes", "--file", file])
        #expect(resumed.status == 0 && resumed.output.contains("35 events stored") && resumed.output.contains("35 skipped"), "\(resumed.output)")
        #expect(try await d.http.allEvents("notes").events == served)
        // A gap (an origin's earlier events missing) stops an import, naming what it needs, and stores nothing of that batch.
        let e = try await ClusterNode("hq-e")
        let tail = a.data + "-tail.ndjson"
        let truckLines = lines.filter { $0.contains("\"truck-7\"") }
        try truckLines.suffix(3).joined(separator: "\n").write(toFile: tail, atomically: true, encoding: .utf8)
        let gap = try await runLaterbase(["import", "--url", e.url, "--root", "notes", "--file", tail])
        #expect(gap.status != 0 && gap.output.contains("gap"), "\(gap.output)")
        #expect(try await e.http.allEvents("notes").events.isEmpty)
        c.signal(SIGTERM)
        _ = await c.waitForExit()
    }

    @Test("stats reads a serving node's folder and agrees with GET /stats; a second serve on a folder is refused")
    func statsAndTheFolderLock() async throws {
        let a = try await ClusterNode("hq-1")
        for i in 0..<5 { #expect(try await a.http.post("/e/notes", #"[{"aggregate":"s-\#(i)","type":"t"},{"aggregate":"s-0","type":"t"}]"#).status == 201) }
        let cli = try await runLaterbase(["stats", "--data", a.data, "--json"])
        #expect(cli.status == 0, "\(cli.output)")
        let fromCLI = try JSONParser.parse(Array(cli.output.utf8))
        let fromHTTP = try await a.http.get("/stats").json
        for json in [fromCLI, fromHTTP] {
            guard case .array(let roots)? = json["roots"], let notes = roots.first(where: { $0["root"]?.stringValue == "notes" }) else {
                Issue.record("no notes in \(json)")
                continue
            }
            #expect(notes["events"]?.int64Value == 10 && notes["aggregates"]?.int64Value == 5 && notes["origins"]?.int64Value == 1, "\(json)")
            #expect(notes["head"]?.stringValue == "hq-1:10")
            #expect((json["map"]?["fill"].flatMap { Double(String(decoding: $0.bytes, as: UTF8.self)) } ?? -1) > 0)
        }
        let second = try await runLaterbase(["serve", "--data", a.data, "--http", "127.0.0.1:0", "--ingest", "none", "--publish", "none"])
        #expect(second.status != 0 && second.output.contains("another laterbase process"), "\(second.output)")
        let importing = try await runLaterbase(["import", "--data", a.data, "--root", "notes", "--file", "/dev/null"])
        #expect(importing.status != 0 && importing.output.contains("another laterbase process"), "\(importing.output)")
    }
}

/// A flag set once, read from any thread.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

enum VersionVectorText {
    /// The number of events a vv's text covers.
    static func total(_ text: String) -> Int? {
        (try? VersionVector(parsing: text)).map { $0.entries.values.reduce(0) { $0 + Int($1) } }
    }
}
