import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What the node does with HTTP connections that hold a place without using it (CONTRACT.md v3,
/// "The front door under load"). Three rules, one per connection, kept by a ``ConnectionGuard``
/// in each connection's pipeline and a ``ConnectionTable`` shared by all:
///
/// - **Headers in time.** Once the first byte of a request arrives, its headers must be complete
///   within ``Policy/headerTimeout`` (10 s), or the connection is closed. (A connection that
///   sends nothing is closed by the idle timeout, `--idle-timeout-seconds`.)
/// - **Longest idle goes first.** At the connection limit a new connection is still accepted,
///   and the open connection idle longest (no request in flight: never sent one, between
///   requests, or with headers half sent) is closed to make room. Only when every connection
///   has a request in flight do new ones wait in the listen backlog. Before, 1,281 idle or
///   half-sent connections kept `/healthz` from answering.
/// - **Refused bodies are read, then the connection closed.** A response finished while its
///   request's body is still arriving (a refusal: 413, 401, 503 before the body was read) makes
///   the connection read and discard the rest, up to ``Policy/maxDiscardBytes`` (the body
///   limit), and then close. A client that sends its whole body before it reads (Python's
///   `urllib`, most clients) so gets its answer; before, it waited out its own timeout.
/// - **A stalled body ends.** A request whose body sends nothing for ``Policy/bodyStallTimeout``
///   (the idle timeout, 60 s) is closed: a truck that lost its network mid-upload held its
///   connection, and its share of the body budget, for ever.
final class ConnectionTable: Sendable {
    struct Policy: Sendable {
        var maxConnections: Int
        var headerTimeout: Duration = .seconds(10)
        /// Most bytes of a refused body read and discarded before the connection is closed.
        var maxDiscardBytes: Int
        /// How long a request's body may send nothing before the connection is closed.
        var bodyStallTimeout: Duration = .seconds(60)
    }

    private struct Entry {
        let channel: any Channel
        /// Since when the connection has had no request in flight; nil while it has one.
        var idleSince: ContinuousClock.Instant?
    }

    private struct State {
        /// Connections accepted and not yet closed (counted by the server's accept handler).
        var open = 0
        /// Connections whose guard is in their pipeline, by the guard's identity.
        var entries: [ObjectIdentifier: Entry] = [:]
    }

    let policy: Policy
    private let state = Mutex(State())
    private let evicted: Counter
    private let headerTimeouts: Counter
    private let bodyStalls: Counter
    private let discarded: Counter
    private let gauge: Gauge
    private let logger: Logger

    init(policy: Policy, factory: any MetricsFactory, logger: Logger) {
        self.policy = policy
        self.logger = logger
        evicted = Counter(label: "laterbase_http_connections_evicted_total", factory: factory)
        headerTimeouts = Counter(label: "laterbase_http_header_timeouts_total", factory: factory)
        bodyStalls = Counter(label: "laterbase_http_body_timeouts_total", factory: factory)
        discarded = Counter(label: "laterbase_http_refused_body_bytes_discarded_total", factory: factory)
        gauge = Gauge(label: "laterbase_http_connections", factory: factory)
    }

    /// The server's side: the accept handler asks ``ConnectionLimit`` before each accept.
    var limit: ConnectionLimit { ConnectionLimit(table: self) }

    /// A new guard for a connection's pipeline.
    func makeGuard() -> ConnectionGuard { ConnectionGuard(table: self) }

    fileprivate func accepted() {
        let victim = state.withLock { s -> (any Channel)? in
            s.open += 1
            gauge.record(s.open)
            guard s.open > policy.maxConnections, let victim = Self.longestIdle(s.entries) else { return nil }
            // Out of the table at once: until its close is done on its own event loop, another
            // accept must not pick it again.
            return s.entries.removeValue(forKey: victim)?.channel
        }
        if let victim {
            evicted.increment()
            logger.debug("HTTP connection limit reached: closing the connection idle longest", metadata: ["peer": "\(victim.remoteAddress?.description ?? "?")"])
            victim.close(promise: nil)
        }
    }

    fileprivate func closed() {
        state.withLock { s in
            s.open -= 1
            gauge.record(s.open)
        }
    }

    /// Whether another connection may be accepted now: under the limit, or an idle one can go.
    fileprivate var accepting: Bool {
        state.withLock { s in s.open < policy.maxConnections || Self.longestIdle(s.entries) != nil }
    }

    private static func longestIdle(_ entries: [ObjectIdentifier: Entry]) -> ObjectIdentifier? {
        var oldest: (since: ContinuousClock.Instant, id: ObjectIdentifier)?
        for (id, entry) in entries {
            guard let since = entry.idleSince else { continue }
            if oldest.map({ since < $0.since }) ?? true { oldest = (since, id) }
        }
        return oldest?.id
    }

    fileprivate func register(_ id: ObjectIdentifier, _ channel: any Channel) {
        state.withLock { $0.entries[id] = Entry(channel: channel, idleSince: .now) }
    }

    fileprivate func unregister(_ id: ObjectIdentifier) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    fileprivate func busy(_ id: ObjectIdentifier, _ busy: Bool) {
        state.withLock { $0.entries[id]?.idleSince = busy ? nil : .now }
    }

    fileprivate func headerTimedOut() { headerTimeouts.increment() }
    fileprivate func bodyStalled() { bodyStalls.increment() }
    fileprivate func discarded(_ bytes: Int) { discarded.increment(by: bytes) }
}

/// Hummingbird's accept gate, with ``ConnectionTable``'s rule: at the limit, accept and close
/// the longest-idle connection, and wait only when none is idle.
struct ConnectionLimit: AvailableConnectionsDelegate {
    let table: ConnectionTable

    mutating func connectionOpened() { table.accepted() }
    mutating func connectionClosed() { table.closed() }
    func isAcceptingNewConnections() -> Bool { table.accepting }
}

/// One connection's part of ``ConnectionTable``'s rules, in its pipeline after HTTP decoding
/// (it sees request parts coming in and response parts going out), with a ``FirstBytes``
/// handler at the front of the pipeline to see a request's first bytes before its headers are
/// whole. Everything here runs on the connection's event loop.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// No request in flight; `started` once a next request's first bytes arrived.
        case idle(headerDeadline: Scheduled<Void>?)
        /// Requests whose heads arrived and whose responses are not finished; `bodyOpen` while
        /// the last one's body is still arriving.
        case busy(requests: Int, bodyOpen: Bool)
        /// A response ended before its request's body: the rest is read and dropped, then the
        /// connection closes.
        case discarding(bytes: Int)
    }

    private let table: ConnectionTable
    private var state = State.idle(headerDeadline: nil)
    /// The response in flight said `Connection: close` (it answers a request whose body had not
    /// come whole): the connection closes after it.
    private var closeAfterResponse = false
    /// When bytes last arrived, and the check that a body still coming keeps coming.
    private var lastInbound = NIODeadline.now()
    private var stallCheck: Scheduled<Void>?
    private var id: ObjectIdentifier { ObjectIdentifier(self) }

    init(table: ConnectionTable) { self.table = table }

    func handlerAdded(context: ChannelHandlerContext) {
        table.register(id, context.channel)
        let first = FirstBytes { [weak self] in self?.firstBytes(context) }
        try? context.pipeline.syncOperations.addHandler(first, position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
        stallCheck?.cancel()
        table.unregister(id)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        stallCheck?.cancel()
        table.unregister(id)
        context.fireChannelInactive()
    }

    /// Raw bytes arrived: if they begin a request, its headers are timed.
    private func firstBytes(_ context: ChannelHandlerContext) {
        lastInbound = .now()
        guard case .idle(nil) = state else { return }
        let timeout = table.policy.headerTimeout
        let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) { [weak self] in
            guard let self, case .idle = self.state else { return }
            self.table.headerTimedOut()
            context.close(promise: nil)
        }
        state = .idle(headerDeadline: deadline)
    }

    private func cancelDeadline() {
        if case .idle(let deadline?) = state {
            deadline.cancel()
            state = .idle(headerDeadline: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle(let deadline), .head):
            deadline?.cancel()
            state = .busy(requests: 1, bodyOpen: true)
            table.busy(id, true)
        case (.busy(let requests, _), .head):
            state = .busy(requests: requests + 1, bodyOpen: true)
        case (.busy(let requests, _), .end):
            state = .busy(requests: requests, bodyOpen: false)
        case (.discarding(let bytes), .body(let buffer)):
            let total = bytes + buffer.readableBytes
            table.discarded(buffer.readableBytes)
            state = .discarding(bytes: total)
            if total > table.policy.maxDiscardBytes { context.close(promise: nil) }
            return
        case (.discarding, .end):
            context.close(promise: nil)
            return
        case (.discarding, .head):
            return
        default:
            break
        }
        context.fireChannelRead(data)
    }

    /// While discarding, this handler asks for the reads itself: the request's reader (the
    /// application's async channel) stopped asking once its buffer of body parts was full, and
    /// with `Connection: close` Hummingbird never drains it.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        switch state {
        case .discarding:
            watchBody(context)
            context.read()
        case .busy(_, true): watchBody(context)
        default: break
        }
    }

    /// A body is still coming after a read: checked at the stall timeout after the last byte
    /// (one timer per slow body; a body that comes in the read of its head needs none).
    private func watchBody(_ context: ChannelHandlerContext) {
        guard stallCheck == nil else { return }
        let timeout = TimeAmount.nanoseconds(Int64(table.policy.bodyStallTimeout / .nanoseconds(1)))
        stallCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: lastInbound + timeout) { [weak self] in
            guard let self else { return }
            self.stallCheck = nil
            switch self.state {
            case .busy(_, true), .discarding: break
            default: return
            }
            if NIODeadline.now() - self.lastInbound >= timeout {
                self.table.bodyStalled()
                context.close(promise: nil)
            } else {
                self.watchBody(context)
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch (unwrapOutboundIn(data), state) {
        case (.head(var head), .busy(1, true)):
            // Answered before its body came whole (a refusal): the connection closes after this
            // response, and says so, so that no client sends another request on it.
            head.headerFields[.connection] = "close"
            closeAfterResponse = true
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case (.end, .busy(_, let bodyOpen)) where closeAfterResponse:
            if bodyOpen {
                state = .discarding(bytes: 0)
                context.write(data, promise: promise)
                context.read()
            } else {
                // The body came whole meanwhile: close once the response is out.
                let written = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(data, promise: written)
                written.futureResult.assumeIsolated().whenComplete { result in
                    promise?.completeWith(result)
                    context.close(promise: nil)
                }
            }
        case (.end, .busy(let requests, let bodyOpen)):
            if requests > 1 {
                state = .busy(requests: requests - 1, bodyOpen: bodyOpen)
            } else {
                state = .idle(headerDeadline: nil)
                table.busy(id, false)
            }
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}

/// At the front of a connection's pipeline (before TLS, when served over TLS): tells the
/// connection's ``ConnectionGuard`` that bytes arrived, and passes them on untouched.
final class FirstBytes: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let arrived: () -> Void

    init(_ arrived: @escaping () -> Void) { self.arrived = arrived }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        arrived()
        context.fireChannelRead(data)
    }
}
