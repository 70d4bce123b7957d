import Foundation
import LaterbaseCore
import LMDB
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Contract v3, "Positions": a folder of store format 4 (no positions) opens with this build and
/// is upgraded in place; a `kill -9` midway leaves what the next start resumes.
@Suite("Store upgrade to format 5, with real processes", .serialized)
struct UpgradeTests {
    /// The dots of a feed, in its order, from its NDJSON lines (`"origin":"…","seq":N}` ends each).
    func dots(_ http: HTTP, _ query: (String) -> String, cursor start: String, cursorKey: String) async throws -> [String] {
        var out: [String] = []
        var cursor = start
        while true {
            let r = try await http.get("/e/notes?limit=10000&" + query(cursor), headers: [("Accept", "application/x-ndjson")])
            guard r.status == 200 else { throw FeedError(status: r.status, body: r.text) }
            let lines = r.text.split(separator: "\n")
            for line in lines.dropLast() {
                guard let o = line.range(of: #""origin":""#, options: .backwards) else { continue }
                let rest = line[o.upperBound...]
                let origin = rest.prefix { $0 != "\"" }
                let seq = rest.drop { $0 != ":" }.dropFirst().prefix { $0.isNumber }
                out.append("\(origin):\(seq)")
            }
            let last = try JSONParser.parse(Array(lines.last!.utf8))
            cursor = last[cursorKey]!.stringValue!
            if last["more"] == .bool(false) { return out }
        }
    }

    @Test("a format 4 folder is numbered in feed order when opened; after kill -9 midway the next start resumes")
    func upgradeResumesAfterKill() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        // 240,000 events: this node's, with a device's recorded ones back in time among them,
        // so that feed order (hlc) and the order stored differ.
        let writer = try await ServerProcess(data: data)
        let http = HTTP(port: writer.port)
        let base = SystemClock.milliseconds() - 3_600_000
        for batch in 0..<24 {
            var items = (0..<9_990).map { #"{"aggregate":"a-\#($0 % 100)","type":"t"}"# }
            items += (0..<10).map { i in
                let seq = batch * 10 + i + 1
                return #"{"id":"\#(EventID.v7(milliseconds: base + UInt64(seq)))","aggregate":"d","type":"t","origin":"dev-1","seq":\#(seq),"hlc":"\#(HLC(rawValue: (base + UInt64(seq)) << 16))"}"#
            }
            #expect(try await http.post("/e/notes", "[" + items.joined(separator: ",") + "]").status == 201)
        }
        let feed = try await dots(http, { "vv=\($0)" }, cursor: "", cursorKey: "vv")
        #expect(feed.count == 240_000)
        writer.signal(SIGTERM)
        _ = await writer.waitForExit()
        do {  // as format 4 left it: no positions
            let env = try Environment(path: data)
            let meta = try env.openDatabase("_meta")
            let positions = try env.openDatabase("notes.pos")
            let txn = try env.beginWrite()
            try txn.put(meta, Array("format".utf8), Array("4".utf8))
            try txn.empty(positions)
            try txn.commit()
        }
        // Started, and killed once the first 100,000 are numbered.
        let log = data + ".upgrade.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let first = Process()
        first.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        first.arguments = ["serve", "--data", data, "--http", "127.0.0.1:0", "--root", "notes", "--ingest", "none", "--publish", "none", "--replica-id", "hq-1"]
        first.standardOutput = FileHandle(forWritingAtPath: log)
        first.standardError = FileHandle(forWritingAtPath: log)
        try first.run()
        var text = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while !text.contains("numbering events"), first.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("numbering events") && !text.contains("store upgraded to format 5"), "killed midway: \(text.suffix(2000))")

        let restarted = try await ServerProcess(data: data)
        #expect(restarted.logText.contains("store upgraded to format 5"))
        let again = HTTP(port: restarted.port)
        let numbered = try await dots(again, { "since=\($0)" }, cursor: "", cursorKey: "next")
        #expect(numbered.count == feed.count && numbered == feed, "positions follow feed order, each event once")
        let written = try await again.post("/e/notes", #"{"aggregate":"after","type":"t"}"#)
        #expect(written.json["position"]?.stringValue.flatMap(Position.init(token:))?.value == 240_001)
        restarted.signal(SIGTERM)
        _ = await restarted.waitForExit()
    }
}
