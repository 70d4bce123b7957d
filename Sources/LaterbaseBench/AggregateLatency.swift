import AsyncHTTPClient
import Foundation
import LaterbaseCore
import LaterbaseServer
import NIOCore

/// GET /a latency for an aggregate with a long history and one with a short one, and the cost
/// of taking a back-dated event into the middle of the long one.
enum AggregateLatency {
    struct Result {
        let bigP50: Double
        let bigP99: Double
        let smallP99: Double
        let backdate: Double
    }

    static func run(server: LaterbaseServer, port: Int) async throws -> Result {
        let base = Int64(1_795_000_000_000)
        func stock(_ id: String, _ i: Int, minutes: Int64) -> String {
            #"{"aggregate":"\#(id)","type":"stock.received","data":{"qty":\#(i % 7 + 1)},"time":\#(base + minutes * 60_000)}"#
        }
        for chunk in stride(from: 0, to: 10_000, by: 1000) {
            let body = "[" + (chunk..<chunk + 1000).map { stock("SKU-BIG@AKL", $0, minutes: Int64($0)) }.joined(separator: ",") + "]"
            _ = try await server.writer.write(try server.store.prepare(root: "inventory", events: EventInput.batch(from: JSONParser.parse(Array(body.utf8)), maxEvents: 10_000)))
        }
        let small = "[" + (0..<10).map { stock("SKU-SMALL@AKL", $0, minutes: Int64($0)) }.joined(separator: ",") + "]"
        _ = try await server.writer.write(try server.store.prepare(root: "inventory", events: EventInput.batch(from: JSONParser.parse(Array(small.utf8)), maxEvents: 10_000)))

        func latencies(_ id: String, _ n: Int) async throws -> [Double] {
            var out: [Double] = []
            for _ in 0..<n {
                let start = ContinuousClock.now
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/a/inventory/\(id)"), timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 20)
                out.append((ContinuousClock.now - start).seconds)
            }
            return out.sorted()
        }
        _ = try await latencies("SKU-BIG@AKL", 200)  // warm up connections
        let big = try await latencies("SKU-BIG@AKL", 3000)
        let smallLatencies = try await latencies("SKU-SMALL@AKL", 3000)

        var backdates: [Double] = []
        for k in 0..<5 {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/e/inventory")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"aggregate":"SKU-BIG@AKL","type":"stock.counted","data":{"qty":100},"time":\#(base + Int64(5000 + k) * 60_000 + 30_000)}"#))
            let start = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status.code == 201 else { throw BenchError("back-dated POST got \(response.status)") }
            backdates.append((ContinuousClock.now - start).seconds)
        }
        func p(_ xs: [Double], _ q: Double) -> Double { xs[min(xs.count - 1, Int(Double(xs.count) * q))] }
        return Result(bigP50: p(big, 0.5), bigP99: p(big, 0.99), smallP99: p(smallLatencies, 0.99), backdate: backdates.sorted()[2])
    }
}
