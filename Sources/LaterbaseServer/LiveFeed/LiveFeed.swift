import HTTPTypes
import Hummingbird
import LaterbaseCore
import NIOCore
import ServiceLifecycle
import Synchronization

/// `GET /e/{root}` with `Accept: text/event-stream` (CONTRACT.md v2, the live feed): what the
/// caller's vv lacks, then every durable commit of the root, as server-sent events.
///
/// Each SSE event is `id: <vv after it>`, `event: events`, `data: {"events": [...], "vv", "head"}`,
/// so a client reconnecting with `Last-Event-ID` resumes without loss or repeats. Pages are read
/// from the store as the client takes them (at most ``Options/pageEvents`` events and
/// ``Options/pageBytes`` bytes each): a slow client costs one page, however far behind it is.
/// A client that takes nothing for ``Options/writeTimeout`` is closed (it resumes from its last
/// id). A comment line goes out after ``Options/keepAlive`` without events.
///
/// A feed is its caller's for as long as it is open (CONTRACT.md v3, "The front door under
/// load"): each holder (a principal, or an address on an open node) holds at most
/// ``Options/maxPerPrincipal`` at once (429 beyond), and after a credentials reload a feed whose
/// principal is gone, or may no longer read the root, ends.
struct LiveFeed: Sendable {
    struct Options: Sendable {
        var keepAlive: Duration = .seconds(10)
        var writeTimeout: Duration = .seconds(30)
        var pageEvents = 1000
        var pageBytes = 1 << 20
        var maxPerPrincipal = 32
    }

    /// Who opened a feed: the principal whose rights it is read with, and the holder its seat
    /// counts against (``LaterbaseRequestContext/holder()``).
    struct Caller: Sendable {
        var principal: Principal
        var holder: String
    }

    let store: EventStore
    let signal: CommitSignal
    let access: Access
    let options: Options
    let metrics: LiveFeedMetrics
    /// The feeds each holder has open.
    let seats = Seats()

    /// The stream for `root` from `vv` (the `Last-Event-ID`, else the `vv` parameter).
    /// - Throws: 429 `too_many_requests` when the caller holds its most feeds already.
    func response(root: String, from vv: VersionVector, for caller: Caller) throws(LaterbaseError) -> Response {
        try stream(root: root, from: vv, for: caller) { [store, options] vv in
            let page = try store.feed(root: root, after: vv, limit: options.pageEvents, maxBytes: options.pageBytes)
            return (Self.event(page), page.count, page.more, page.vv)
        }
    }

    /// The stream for `root` after a position (the `Last-Event-ID`, else the `since`
    /// parameter; nil: the beginning): SSE events `id: <next>` with `{"events", "next"}`.
    func response(root: String, since: Position?, for caller: Caller) throws(LaterbaseError) -> Response {
        try stream(root: root, from: since, for: caller) { [store, options] since in
            let page = try store.changes(root: root, since: since, limit: options.pageEvents, maxBytes: options.pageBytes)
            return (Self.event(page), page.count, page.more, page.next)
        }
    }

    /// What the caller lacks from `start`, a page at a time (`page` gives the page's SSE event,
    /// its count, whether more is stored, and the cursor after it), then every commit of the root.
    private func stream<Cursor: Sendable>(
        root: String, from start: Cursor, for caller: Caller,
        page: @escaping @Sendable (Cursor) throws -> (event: [UInt8], count: Int, more: Bool, next: Cursor)
    ) throws(LaterbaseError) -> Response {
        guard let seat = seats.take(caller.holder, limit: options.maxPerPrincipal) else {
            metrics.refused()
            throw LaterbaseError(.tooManyRequests, "this caller holds \(options.maxPerPrincipal) live feeds already (--max-live-feeds-per-principal); close one or retry")
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            metrics.opened()
            defer { metrics.closed() }
            var cursor = start
            // Tell EventSource clients how soon to reconnect.
            try await send("retry: 1000\n\n", to: &writer)
            var quiet = ContinuousClock.now
            var rights = access.generation
            while !signal.isClosed {
                // A reload wakes every feed: one whose principal is gone, or may no longer read
                // the root, ends here, before it reads another page.
                if access.generation != rights {
                    rights = access.generation
                    guard access.refreshed(caller.principal)?.mayRead(root) == true else {
                        metrics.revoked()
                        break
                    }
                }
                let version = signal.version(of: root)
                try await store.awaitReadable()  // a slow sync holds this feed, not a pool thread
                let next = try page(cursor)
                if next.count > 0 {
                    try await send(next.event, to: &writer)
                    metrics.sent(next.count)
                    cursor = next.next
                    quiet = ContinuousClock.now
                    if next.more { continue }
                }
                let remaining = options.keepAlive - (ContinuousClock.now - quiet)
                if remaining > .zero, await signal.wait(root: root, after: version, timeout: remaining) { continue }
                if signal.isClosed || Task.isCancelled { break }
                if ContinuousClock.now - quiet >= options.keepAlive {
                    try await send(": keep-alive\n\n", to: &writer)
                    quiet = ContinuousClock.now
                }
            }
            try await writer.finish(nil)
            withExtendedLifetime(seat) {}
        })
    }

    /// One SSE event for a feed page: `id: <vv after it>`, `data: {"events": [...], "vv", "head"}`.
    static func event(_ page: FeedPage) -> [UInt8] {
        let vv = page.vv.description
        return event(id: vv, events: page.events, [("vv", vv), ("head", page.head.description)])
    }

    /// One SSE event for a page by position: `id: <next>`, `data: {"events": [...], "next"}`.
    static func event(_ page: ChangesPage) -> [UInt8] {
        let next = page.next.description
        return event(id: next, events: page.events, [("next", next)])
    }

    /// `id: <id>`, `event: events`, `data: {"events": [events], <members, string-valued>}`.
    private static func event(id: String, events: [UInt8], _ members: [(key: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(events.count + 256)
        out.append(contentsOf: "id: \(id)\nevent: events\ndata: {\"events\":[".utf8)
        out.append(contentsOf: events.dropLast())  // the last separator
        out.append(UInt8(ascii: "]"))
        for (key, value) in members {
            out.append(contentsOf: ",\"\(key)\":".utf8)
            JSONWriter.writeString(value, to: &out)
        }
        out.append(contentsOf: "}\n\n".utf8)
        return out
    }

    private func send(_ text: String, to writer: inout any ResponseBodyWriter) async throws {
        try await send(Array(text.utf8), to: &writer)
    }

    /// Writes, or gives up on a client that takes nothing for ``Options/writeTimeout``.
    private func send(_ bytes: [UInt8], to writer: inout any ResponseBodyWriter) async throws {
        let buffer = ByteBuffer(bytes: bytes)
        let timeout = options.writeTimeout
        let w = UnsafeTransfer(writer)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                var inner = w.value
                try await inner.write(buffer)
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let wrote = try await group.next() ?? false
            group.cancelAll()
            if !wrote {
                metrics.slowClientClosed()
                throw LiveFeedError.clientTooSlow
            }
        }
    }
}

enum LiveFeedError: Error { case clientTooSlow }

extension LiveFeed {
    /// The feeds each holder has open. A seat is given back when the response holding it is
    /// gone, whether its stream ran to the end, failed, or never started (a client that went
    /// away before the head was written).
    final class Seats: Sendable {
        private let open = Mutex<[String: Int]>([:])

        /// A seat for `holder`, or nil when it holds `limit` already.
        func take(_ holder: String, limit: Int) -> Seat? {
            let taken = open.withLock { open -> Bool in
                guard open[holder, default: 0] < limit else { return false }
                open[holder, default: 0] += 1
                return true
            }
            return taken ? Seat(holder: holder, seats: self) : nil
        }

        fileprivate func giveBack(_ holder: String) {
            open.withLock { open in
                let left = open[holder, default: 1] - 1
                open[holder] = left > 0 ? left : nil
            }
        }
    }

    /// One open feed's claim on its holder's seats, given back when released.
    final class Seat: Sendable {
        let holder: String
        private let seats: Seats

        fileprivate init(holder: String, seats: Seats) {
            self.holder = holder
            self.seats = seats
        }

        deinit { seats.giveBack(holder) }
    }
}

/// Moves a non-Sendable value into a child task that is awaited before the value is used again.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Ends live feeds when the node begins to shut down, so HTTP's wait for requests in flight
/// ends. Listed after the HTTP application, so it is told first.
struct LiveFeedService: Service {
    let signal: CommitSignal

    func run() async throws {
        try? await gracefulShutdown()
        signal.close()
    }
}
