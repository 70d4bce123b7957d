import Foundation
import LaterbaseDemo

/// HTTP load from wrk (a separate C process on loopback), so the Swift server is measured
/// rather than a Swift client sharing its cores.
struct HTTPLoad {
    let port: Int
    let seconds: Int
    let connections: Int
    /// Sent with every request, e.g. `Authorization`.
    var headers: [String: String] = [:]

    static let singleEvent = SampleLoad.event("notes", 1)
    static let hundredEvents = "[" + (0..<100).map { SampleLoad.event("notes", $0) }.joined(separator: ",") + "]"

    struct Result {
        let requestsPerSecond: Double
        let eventsPerSecond: Double
        let note: String
    }

    func run(path: String, body: String, eventsPerRequest: Int) throws -> Result {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("laterbase-wrk-\(UUID().uuidString).lua").path
        let escaped = body.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        try """
        wrk.method = "POST"
        wrk.body = "\(escaped)"
        wrk.headers["Content-Type"] = "application/json"
        \(headers.map { "wrk.headers[\"\($0.key)\"] = \"\($0.value)\"" }.joined(separator: "\n"))
        """.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["wrk", "-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)\(path)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let rps = Self.number(after: "Requests/sec:", in: output) else {
            throw BenchError("wrk gave no result:\n\(output)")
        }
        let errors = Self.number(after: "Non-2xx or 3xx responses:", in: output) ?? 0
        let p99 = output.split(separator: "\n").first { $0.contains("99%") }.map { $0.split(separator: " ").last.map(String.init) ?? "" } ?? "?"
        let note = "p99 \(p99)" + (errors > 0 ? ", \(Int(errors)) non-2xx" : "")
        return Result(requestsPerSecond: rps, eventsPerSecond: rps * Double(eventsPerRequest), note: note)
    }

    static func number(after label: String, in text: String) -> Double? {
        guard let range = text.range(of: label) else { return nil }
        let rest = text[range.upperBound...].drop { $0 == " " }
        return Double(rest.prefix { $0.isNumber || $0 == "." })
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
