import AsyncHTTPClient
import Foundation
import LaterbaseCore
import ZeroMQ
import NIOCore
import NIOHTTP1
import NIOSSL

/// What `GET /node` says about a peer: how a node given only an HTTP URL finds the rest.
public struct NodeInfo: Sendable, Equatable {
    public var replica: String
    public var roots: [String]
    /// The peer's ZeroMQ ingest (PULL) endpoint, if it has one.
    public var ingest: String?
    /// The peer's ZeroMQ publish (PUB) endpoint, if it has one.
    public var publish: String?
    /// The replicas the peer's own links reach now: a peer that links to this node pulls from it.
    public var linkedReplicas: Set<String> = []
    /// The peer's CURVE public key (Z85), and whether its sockets are CURVE servers.
    public var curvePublicKey: String? = nil
    public var curve = false
    /// The limits the peer announces, if it does.
    public var limits: NodeLimits? = nil
}

/// What this node presents to the peers it names: a bearer token for their HTTP API, and its
/// CURVE key pair for their ZeroMQ sockets.
public struct PeerCredentials: Sendable {
    /// Sent as `Authorization: Bearer <token>`; nil for open peers.
    public var token: String?
    /// Presented on the peers' CURVE sockets; nil: no CURVE (an open peer's sockets need none).
    public var keyPair: CurveKeyPair?
    /// Certificates trusted for `https://` peers, beside the system's (`--tls-ca`).
    public var trustRoots: [NIOSSLCertificate]

    public init(token: String? = nil, keyPair: CurveKeyPair? = nil, trustRoots: [NIOSSLCertificate] = []) {
        self.token = token
        self.keyPair = keyPair
        self.trustRoots = trustRoots
    }
}

/// One page of a peer's changes feed.
struct FeedResponse {
    var events: [EventInput]
    var vv: VersionVector
    var head: VersionVector
    var more: Bool
    /// The peer's digest of the root (``RootDigests/root``), when it sends one.
    var digest: UInt64?
    /// The peer's position token as of the page, when it sends one.
    var position: String? = nil
}

/// One page of a peer's feed by position (contract v3, "Positions").
struct ChangesResponse {
    var events: [EventInput]
    /// The peer's token after the page: opaque here, sent back as `since`.
    var next: String
    var more: Bool
    /// The peer's summary of the root as of `next`, when asked for.
    var summary: RootSummary?
}

/// The HTTP half of talking to a peer: discovery through `/node` and the changes feed. Calls
/// return futures, so the link's thread goes on taking deltas while a request is out; each has a
/// deadline and a cap on what it reads.
final class PeerClient: Sendable {
    let url: String
    private let host: String
    private let http: HTTPClient
    private let token: String?
    /// This node's replica id, named in the `Laterbase-Replica` header of what it POSTs: the
    /// peer takes it as replication (for which the merge is total), as from a `peer` principal.
    private let replica: String

    init(url: String, http: HTTPClient, token: String? = nil, replica: String = "") {
        self.token = token
        self.replica = replica
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        self.url = u
        self.host = URLComponents(string: u)?.host ?? "127.0.0.1"
        self.http = http
    }

    /// An event loop of the HTTP client's, for futures that need one.
    var eventLoop: any EventLoop { http.eventLoopGroup.any() }

    /// The largest answer read from a peer: a feed page of 10,000 events of the 8 MiB body limit
    /// fits well inside; an endless body is cut off here.
    static let maxResponseBytes = 64 << 20

    /// `GET /node`. Endpoints bound to every interface (`0.0.0.0`, `*`, `[::]`) are rewritten to
    /// the host of the peer's URL, the address we already know reaches it.
    /// - Returns: the node, or a failure: `bad_request` when the answer is not a valid node.
    func node(timeout: Duration) -> EventLoopFuture<NodeInfo> {
        getJSON("/node", timeout: timeout).flatMapThrowing { [url, host] json in
            guard let replica = json["replica"]?.stringValue, case .array(let roots)? = json["roots"] else {
                throw PeerError(.malformedAnswer, "\(url)/node did not describe a Laterbase node")
            }
            // The replica names a file under peers/ and the origin of what the peer sends.
            guard Names.isValidOrigin(replica) else {
                throw PeerError(.malformedAnswer, "\(url)/node names replica '\(replica.prefix(80))', which is not a valid origin; not syncing with it")
            }
            var linked: Set<String> = []
            if case .array(let peers)? = json["peers"] {
                for peer in peers where peer["reachable"] == .bool(true) {
                    if let r = peer["replica"]?.stringValue { linked.insert(r) }
                }
            }
            let curve = json["curve"] == .bool(true)
            let key = json["curve_public_key"]?.stringValue
            if curve, key.map(Z85.isKey) != true {
                throw PeerError(.malformedAnswer, "\(url)/node says its sockets are CURVE servers but gives no valid curve_public_key")
            }
            // A node with credentials says which roots this node may read there: only those are synced.
            var names = roots.compactMap(\.stringValue).filter(Names.isValidRoot)
            if case .array(let readable)? = json["caller"]?["read"] {
                let allowed = Set(readable.compactMap(\.stringValue))
                names = names.filter(allowed.contains)
            }
            return NodeInfo(
                replica: replica, roots: names,
                ingest: json["ingest"]?.stringValue.map { Self.reachable($0, host: host) },
                publish: json["publish"]?.stringValue.map { Self.reachable($0, host: host) }, linkedReplicas: linked,
                curvePublicKey: key.flatMap { Z85.isKey($0) ? $0 : nil }, curve: curve, limits: NodeLimits(json: json["limits"]))
        }
    }

    /// What `read` makes of a peer's feed page; what it refuses (events no node records, say) is
    /// the peer's malformed answer.
    private static func answer<T>(_ url: String, _ root: String, _ read: () throws(LaterbaseError) -> T) throws(PeerError) -> T {
        do { return try read() } catch { throw PeerError(.malformedAnswer, "\(url)/e/\(root): \(error.message)") }
    }

    /// `GET /e/{root}?vv=…&limit=…`.
    /// - Parameter end: told the page's `vv` and `more` from its tail, before its events are read.
    func feed(root: String, after vv: VersionVector, limit: Int, timeout: Duration, end: (@Sendable (VersionVector, Bool) -> Void)? = nil) -> EventLoopFuture<FeedResponse> {
        let query = "vv=\(vv.description.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "+", "="])) ?? "")&limit=\(limit)"
        return get("/e/\(root)?\(query)", timeout: timeout).flatMapThrowing { [url] body in
            if let end, let (vv, more) = Self.pageEnd(body) { end(vv, more) }
            let (delta, json) = try Self.answer(url, root) { () throws(LaterbaseError) in
                try body.withUnsafeBytes { b in Result { () throws(LaterbaseError) in try Delta.parsing(b) } }.get()
            }
            guard let vvText = json["vv"]?.stringValue, let after = try? VersionVector(parsing: vvText), case .bool(let more)? = json["more"] else {
                throw PeerError(.malformedAnswer, "\(url)/e/\(root) did not return a feed page")
            }
            let digest = json["digest"]?.stringValue.flatMap { UInt64($0, radix: 16) }
            let position = json["position"]?.stringValue.flatMap { Self.isToken($0) ? $0 : nil }
            return FeedResponse(events: delta.events, vv: after, head: delta.head, more: more, digest: digest, position: position)
        }
    }

    /// `GET /e/{root}?since=…&limit=…`: what the peer stored after its position `token` ("": the
    /// beginning). A token the peer did not issue, or issued before a restore, fails with
    /// `position_expired` (its 410).
    /// - Parameters:
    ///   - digests: ask for the root's summary (a probe).
    ///   - end: told the page's `next` and `more` from its tail, before its events are read.
    func changes(
        root: String, since token: String, limit: Int, digests: Bool = false, timeout: Duration, end: (@Sendable (String, Bool) -> Void)? = nil
    ) -> EventLoopFuture<ChangesResponse> {
        // A token is [A-Za-z0-9_.:-]: nothing to escape in a query.
        let query = "since=\(token)&limit=\(limit)" + (digests ? "&digests=true" : "")
        return get("/e/\(root)?\(query)", timeout: timeout).flatMapThrowing { [url] body in
            if let end, let tail = Self.tail(body), let next = tail["next"]?.stringValue, case .bool(let more)? = tail["more"] { end(next, more) }
            let (events, json) = try Self.answer(url, root) { () throws(LaterbaseError) in
                let (events, json) = try body.withUnsafeBytes { b in
                    Result { () throws(LaterbaseError) in
                        try EventInput.page(reading: b) { (json) throws(LaterbaseError) in
                            guard case .array? = json["events"] else { throw LaterbaseError(.badRequest, "not a feed page: it needs events") }
                        }
                    }
                }.get()
                try Delta.recordedOnly(events)
                return (events, json)
            }
            guard let next = json["next"]?.stringValue, Self.isToken(next), case .bool(let more)? = json["more"] else {
                throw PeerError(.malformedAnswer, "\(url)/e/\(root) did not return a feed page by position")
            }
            var summary: RootSummary?
            if let d = json["digest"]?.stringValue.flatMap({ UInt64($0, radix: 16) }), let h = json["head_digest"]?.stringValue.flatMap({ UInt64($0, radix: 16) }) {
                summary = RootSummary(content: d, head: h)
            }
            return ChangesResponse(events: events, next: next, more: more, summary: summary)
        }
    }

    /// Whether `text` has a position token's form (contract v3): a peer's answer is input, and
    /// the token goes back into a URL and the peer state file.
    static func isToken(_ text: String) -> Bool {
        let bytes = text.utf8
        return (1...64).contains(bytes.count) && bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2E || b == 0x3A || b == 0x2D
        }
    }

    /// `GET /e/{root}?vv=&limit=0&digests=true`: the peer's head and each origin's digest.
    func digests(root: String, timeout: Duration) -> EventLoopFuture<RootDigests> {
        getJSON("/e/\(root)?vv=&limit=0&digests=true", timeout: timeout).flatMapThrowing { [url] json in
            guard let headText = json["head"]?.stringValue, let head = try? VersionVector(parsing: headText), case .object(let members)? = json["digests"] else {
                throw PeerError(.malformedAnswer, "\(url)/e/\(root) did not return digests")
            }
            var origins: [String: UInt64] = [:]
            for (origin, value) in members {
                guard Names.isValidOrigin(origin), let text = value.stringValue, let digest = UInt64(text, radix: 16) else {
                    throw PeerError(.malformedAnswer, "\(url)/e/\(root) returned a malformed digest for \(origin)")
                }
                origins[origin] = digest
            }
            return RootDigests(head: head, origins: origins)
        }
    }

    /// `POST /e/{root}` of recorded events, as a JSON array's text.
    func post(root: String, body: [UInt8], timeout: Duration) -> EventLoopFuture<Void> {
        send(.POST, "/e/\(root)", body: body, timeout: timeout).map { _ in }
    }

    /// A feed page's `vv` and `more` from its tail, without reading its events: the node writes
    /// them after the events array, whose end is the page's last `]` (a version vector's text
    /// has none). Nil when the tail is not that; the page's full read decides in any case.
    static func pageEnd(_ body: [UInt8]) -> (VersionVector, Bool)? {
        guard let json = tail(body), let text = json["vv"]?.stringValue, let vv = try? VersionVector(parsing: text),
              case .bool(let more)? = json["more"]
        else { return nil }
        return (vv, more)
    }

    /// The members after a page's events array, as an object: the array's end is the page's
    /// last `]` (neither a version vector nor a token has one).
    static func tail(_ body: [UInt8]) -> JSON? {
        guard let close = body.lastIndex(of: UInt8(ascii: "]")), close + 1 < body.count, body[close + 1] == UInt8(ascii: ",") else { return nil }
        var tail: [UInt8] = [UInt8(ascii: "{")]
        tail.append(contentsOf: body[(close + 2)...])
        return try? JSONParser.parse(tail)
    }

    private func getJSON(_ path: String, timeout: Duration) -> EventLoopFuture<JSON> {
        get(path, timeout: timeout).flatMapThrowing { try JSONParser.parse($0) }
    }

    private func get(_ path: String, timeout: Duration) -> EventLoopFuture<[UInt8]> {
        send(.GET, path, body: nil, timeout: timeout)
    }

    /// One request; a 2xx answer's body, or an error naming the status.
    private func send(_ method: HTTPMethod, _ path: String, body: [UInt8]?, timeout: Duration) -> EventLoopFuture<[UInt8]> {
        let (s, a) = timeout.components
        let deadline = NIODeadline.now() + .nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
        var request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url + path, method: method)
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                if !replica.isEmpty { request.headers.add(name: "Laterbase-Replica", value: replica) }
                request.body = .bytes(body)
            }
        } catch {
            return http.eventLoopGroup.any().makeFailedFuture(error)
        }
        let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maxResponseBytes)
        return http.execute(request: request, delegate: accumulator, deadline: deadline).futureResult.flatMapThrowing { [url] response in
            let bytes = response.body.map { Array($0.readableBytesView) } ?? []
            guard (200..<300).contains(response.status.code) else {
                // 410: a position token the peer no longer knows (the link starts again from its vv).
                throw PeerError(response.status.code == 410 ? .positionExpired : .status(Int(response.status.code)), "\(method) \(url)\(path): HTTP \(response.status.code) \(String(decoding: bytes.prefix(200), as: UTF8.self))")
            }
            return bytes
        }
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
