import AsyncHTTPClient
import Foundation
import LaterbaseCore
import NIOCore

/// What `GET /node` says about a peer: how a node given only an HTTP URL finds the rest.
public struct NodeInfo: Sendable, Equatable {
    public var replica: String
    public var roots: [String]
    /// The peer's ZeroMQ ingest (PULL) endpoint, if it has one.
    public var ingest: String?
    /// The peer's ZeroMQ publish (PUB) endpoint, if it has one.
    public var publish: String?
}

/// One page of a peer's changes feed.
struct FeedResponse {
    var events: [EventInput]
    var vv: VersionVector
    var head: VersionVector
    var more: Bool
}

/// The HTTP half of talking to a peer: discovery through `/node` and the changes feed. Calls
/// block the calling thread (a peer link's own thread), each with a deadline.
final class PeerClient: Sendable {
    let url: String
    private let host: String
    private let http: HTTPClient

    init(url: String, http: HTTPClient) {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        self.url = u
        self.host = URLComponents(string: u)?.host ?? "127.0.0.1"
        self.http = http
    }

    /// `GET /node`. Endpoints bound to every interface (`0.0.0.0`, `*`, `[::]`) are rewritten to
    /// the host of the peer's URL, the address we already know reaches it.
    /// The largest answer read from a peer: a feed page of 10,000 events of the 8 MiB body limit
    /// fits well inside; an endless body is cut off here.
    static let maxResponseBytes = 64 << 20

    func node(timeout: Duration) throws -> NodeInfo {
        let json = try getJSON("/node", timeout: timeout)
        guard let replica = json["replica"]?.stringValue, case .array(let roots)? = json["roots"] else {
            throw LaterbaseError(.badRequest, "\(url)/node did not describe a Laterbase node")
        }
        // The replica names a file under peers/ and the origin of what the peer sends.
        guard Names.isValidOrigin(replica) else {
            throw LaterbaseError(.badRequest, "\(url)/node names replica '\(replica.prefix(80))', which is not a valid origin; not syncing with it")
        }
        return NodeInfo(
            replica: replica, roots: roots.compactMap(\.stringValue).filter(Names.isValidRoot),
            ingest: json["ingest"]?.stringValue.map { Self.reachable($0, host: host) },
            publish: json["publish"]?.stringValue.map { Self.reachable($0, host: host) })
    }

    /// `GET /e/{root}?vv=…&limit=…`.
    func feed(root: String, after vv: VersionVector, limit: Int, timeout: Duration) throws -> FeedResponse {
        let query = "vv=\(vv.description.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "+", "="])) ?? "")&limit=\(limit)"
        let json = try getJSON("/e/\(root)?\(query)", timeout: timeout)
        let delta = try Delta(json)
        guard let vvText = json["vv"]?.stringValue, let after = try? VersionVector(parsing: vvText), case .bool(let more)? = json["more"] else {
            throw LaterbaseError(.badRequest, "\(url)/e/\(root) did not return a feed page")
        }
        return FeedResponse(events: delta.events, vv: after, head: delta.head, more: more)
    }

    private func getJSON(_ path: String, timeout: Duration) throws -> JSON {
        try JSONParser.parse(get(path, timeout: timeout))
    }

    private func get(_ path: String, timeout: Duration) throws -> [UInt8] {
        let (s, a) = timeout.components
        let deadline = NIODeadline.now() + .nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
        let request = try HTTPClient.Request(url: url + path, method: .GET)
        let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maxResponseBytes)
        let response = try http.execute(request: request, delegate: accumulator, deadline: deadline).wait()
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        guard response.status.code == 200 else {
            throw LaterbaseError(.unavailable, "GET \(url)\(path): HTTP \(response.status.code) \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        return bytes
    }

    /// An endpoint bound to every interface, with `host` (the peer URL's) in its place.
    static func reachable(_ endpoint: String, host: String) -> String {
        for wildcard in ["://0.0.0.0:", "://*:", "://[::]:"] where endpoint.contains(wildcard) {
            let h = host.contains(":") ? "[\(host)]" : host
            return endpoint.replacingOccurrences(of: wildcard, with: "://\(h):")
        }
        return endpoint
    }
}
