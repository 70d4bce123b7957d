import AsyncHTTPClient
import Foundation
import NIOCore

/// Reads a whole root through GET /e with NDJSON, 10,000 events a page, as a catching-up
/// replica would.
enum FeedRead {
    static func run(port: Int, root: String, events: Int) async throws -> (events: Int, perSecond: Double) {
        var vv = ""
        var count = 0
        let start = ContinuousClock.now
        while true {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/e/\(root)?limit=10000&vv=\(vv.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            request.headers.add(name: "Accept", value: "application/x-ndjson")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 1 << 30)
            let bytes = body.readableBytesView
            var lines = 0
            var lastLineStart = bytes.startIndex
            for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
                lines += 1
                if i + 1 < bytes.endIndex { lastLineStart = i + 1 }
            }
            count += lines - 1
            let tail = String(decoding: bytes[lastLineStart...], as: UTF8.self)
            guard let vvRange = tail.range(of: #""vv":""#) else { throw BenchError("no vv in \(tail)") }
            vv = String(tail[vvRange.upperBound...].prefix { $0 != "\"" })
            if tail.contains(#""more":false"#) { break }
        }
        return (count, Double(count) / (ContinuousClock.now - start).seconds)
    }
}
