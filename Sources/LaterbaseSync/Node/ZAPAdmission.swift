import LaterbaseCore
import ZeroMQ

/// The ZAP handler's decisions, without sockets or clocks (like ``PeerLinkStateMachine``): who may
/// connect, and how many ingest senders are admitted at once while the rest wait in order. The
/// handler's thread feeds it what the ingest socket's monitor reports and the requests libzmq
/// sends, and carries out what it returns; tests drive it with events and instants.
///
/// Only completed handshakes count (contract v3): the admitted are the handshakes the monitor
/// reported succeeded, less the disconnections of such connections, plus the admissions sent
/// whose success has not been reported yet. libzmq reports a connection that ends in its
/// handshake as a handshake failure followed at once by its disconnection (one I/O thread, so
/// nothing comes between), which tells those apart from admitted senders leaving.
struct ZAPAdmission<Ticket> {
    /// How long libzmq lets a handshake last (CONTRACT.md v3: 10 s): a request held longer has
    /// lost its connection; its sender reconnects and asks again.
    static var handshakeTimeout: Duration { .seconds(10) }
    /// How long an admission is counted while its success is not reported (the connection may
    /// have gone away before the answer reached it).
    static var admissionReport: Duration { .seconds(5) }

    /// The most ingest senders admitted at once.
    let maxSenders: Int

    /// Open connections by file descriptor, in their handshake or not.
    private(set) var live: Set<UInt32> = []
    /// Connections whose handshake succeeded and that have not disconnected.
    private(set) var admitted = 0
    /// Admissions sent, oldest first, whose success is not reported yet.
    private var answered: [ContinuousClock.Instant] = []
    /// Whether the last event was a handshake failure: the disconnection that follows is of a
    /// connection that was never admitted.
    private var failedInHandshake = false
    /// Senders waiting for a place, in order of arrival.
    private var held: [(ticket: Ticket, since: ContinuousClock.Instant)] = []
    private var lastWarning: ContinuousClock.Instant?

    init(maxSenders: Int) { self.maxSenders = maxSenders }

    /// The admitted, counting admissions on their way.
    var taken: Int { admitted + answered.count }
    /// Senders waiting for a place.
    var waiting: Int { held.count }

    /// What the ingest socket's monitor reported.
    mutating func observed(_ kind: ZMQMonitorEvent.Kind, connection: UInt32) {
        let failed = failedInHandshake
        failedInHandshake = false
        switch kind {
        case .accepted: live.insert(connection)
        case .closed: live.remove(connection)
        case .disconnected:
            live.remove(connection)
            if !failed { admitted = max(0, admitted - 1) }
        case .handshakeSucceeded:
            admitted += 1
            if !answered.isEmpty { answered.removeFirst() }
        case let kind where !kind.isDisjoint(with: .handshakeFailed): failedInHandshake = true
        default: break
        }
    }

    /// A sender libzmq asks about, whose identity passed (``identify(_:on:access:)``): it waits its
    /// turn, answered by ``settle(now:)``.
    /// - Returns: whether it is held behind the limit (not only behind those before it).
    mutating func asked(_ ticket: Ticket, now: ContinuousClock.Instant) -> Bool {
        let overLimit = taken + held.count >= maxSenders
        held.append((ticket, now))
        return overLimit
    }

    /// What the handler does now.
    struct Settled {
        /// Admit these, in this order.
        var admit: [Ticket] = []
        /// Warn that senders wait (at most every 10 s, once one has waited a second).
        var warning: (waiting: Int, open: Int, admitted: Int)?
    }

    /// Forgets the requests and admissions that have timed out, then admits in order while the
    /// admitted are under the limit.
    mutating func settle(now: ContinuousClock.Instant) -> Settled {
        held.removeAll { now - $0.since > Self.handshakeTimeout + .seconds(1) }
        answered.removeAll { now - $0 > Self.admissionReport }
        var settled = Settled()
        while !held.isEmpty, taken < maxSenders {
            settled.admit.append(held.removeFirst().ticket)
            answered.append(now)
        }
        if let first = held.first, now - first.since > .seconds(1), lastWarning.map({ now - $0 > .seconds(10) }) ?? true {
            settled.warning = (held.count, live.count, admitted)
            lastWarning = now
        }
        return settled
    }

    /// Why a connection may not connect: the metric's reason and the text of the refusal.
    struct Refusal: Error, Equatable {
        var reason: String
        var text: String
    }

    /// Who the connection is (its principal's name, "" on a node without credentials), or why it
    /// may not connect to `socket`.
    static func identify(_ request: ZAPRequest, on socket: Principal.Socket, access: Access) -> Result<String, Refusal> {
        guard access.isEnforced else { return .success("") }
        guard request.mechanism == "CURVE", let raw = request.credentials.first, raw.count == 32, let key = Z85.encode(raw) else {
            return .failure(Refusal(reason: "mechanism", text: "CURVE is required"))
        }
        guard let principal = access.principal(curveKey: key) else {
            return .failure(Refusal(reason: "unknown_key", text: "no principal has this public key"))
        }
        guard principal.mayConnect(to: socket) else {
            return .failure(Refusal(reason: "forbidden", text: "\(principal.name) (\(principal.role.rawValue)) may not connect to \(socket.rawValue)"))
        }
        return .success(principal.name)
    }
}
