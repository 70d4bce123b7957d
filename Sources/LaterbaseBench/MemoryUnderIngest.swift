import Foundation
import LaterbaseDemo
import ZeroMQ

/// A `laterbase serve` process (the binary beside this one) taking `events` over ZeroMQ in
/// messages of 100, 10,000 aggregates, as fast as it will; its anonymous RSS (heap, not the
/// LMDB map's file pages) sampled from /proc every 100 ms.
enum MemoryUnderIngest {
    struct Result {
        var events: Int
        var perSecond: Double
        var peakAnonymousMiB: Double
        var finalAnonymousMiB: Double
    }

    static func run(folder: String, events: Int) throws -> Result {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("laterbase").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw BenchError("\(binary) is missing: swift build -c release --product laterbase") }
        let ingestPort = 15_000 + Int.random(in: 0..<1000)
        let httpPort = ingestPort + 1000
        let node = Process()
        node.executableURL = URL(fileURLWithPath: binary)
        node.arguments = ["serve", "--data", folder, "--http", "127.0.0.1:\(httpPort)", "--ingest", "tcp://127.0.0.1:\(ingestPort)", "--publish", "none", "--root", "notes"]
        node.standardOutput = FileHandle.nullDevice
        node.standardError = FileHandle.nullDevice
        try node.run()
        defer {
            kill(node.processIdentifier, SIGKILL)
            node.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 1.5)
        let pid = node.processIdentifier
        func anonymousMiB() -> Double {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
                  let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
            return kb / 1024
        }
        let context = try ZMQContext()
        defer { context.terminate() }
        let push = try context.socket(.push)
        defer { push.close() }
        try push.connect("tcp://127.0.0.1:\(ingestPort)")
        let topic = Array("notes".utf8)
        let start = ContinuousClock.now
        var peak = anonymousMiB()
        var lastSample = ContinuousClock.now
        var sent = 0
        while sent < events {
            var body: [UInt8] = [UInt8(ascii: "[")]
            for i in sent..<(sent + 100) {
                if i > sent { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: SampleLoad.event("notes", i).utf8)
            }
            body.append(UInt8(ascii: "]"))
            try push.send([topic, body])  // blocks while the node holds the sender back
            sent += 100
            if ContinuousClock.now - lastSample > .milliseconds(100) {
                peak = max(peak, anonymousMiB())
                lastSample = ContinuousClock.now
            }
        }
        // Done when the node's head holds every event.
        while true {
            peak = max(peak, anonymousMiB())
            if let head = try? headCount(port: httpPort), head >= events { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        return Result(events: events, perSecond: Double(events) / elapsed, peakAnonymousMiB: peak, finalAnonymousMiB: anonymousMiB())
    }

    /// The sum of the notes root's head (`GET /e/notes?limit=1`), read with curl to keep this
    /// free of an HTTP client.
    private static func headCount(port: Int) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-sf", "http://127.0.0.1:\(port)/e/notes?limit=1"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard let range = out.range(of: #""head":""#) else { return 0 }
        let head = out[range.upperBound...].prefix { $0 != "\"" }
        return head.split(separator: ",").compactMap { entry in entry.split(separator: ":").last.flatMap { Int($0) } }.reduce(0, +)
    }
}
