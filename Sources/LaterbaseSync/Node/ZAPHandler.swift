import LaterbaseCore
import Logging
import Metrics
import Synchronization
import ZeroMQ

/// The node's ZAP handler (RFC 27): libzmq asks it about every connection to the ingest and
/// publish sockets. It does two things there.
///
/// **Who.** With credentials, both sockets are CURVE servers (``protect(publish:)``,
/// ``protect(ingest:maxSenders:)``), and a client is admitted only if its public key is the
/// `curve_public_key` of a principal allowed on that socket (``Principal/mayConnect(to:)``); the
/// connection is tagged with the principal's name, which the ingest reads back per message
/// (``ZMQSocket/lastUserID``). Refusals are counted in
/// `laterbase_zmq_handshakes_refused_total{socket, reason}`.
///
/// **How many.** libzmq queues received messages per connection (the receive high-water mark)
/// and allocates a message as soon as its header says how big it is, so every admitted ingest
/// connection can hold (high-water mark + 1) messages of up to the size limit; only the number of
/// connections bounds the whole. The handler admits at most `maxSenders` ingest senders at once.
/// A sender over the limit is not refused (libzmq 4.3 never reconnects after a refusal): its
/// request is held, in order of arrival, and answered when an admitted sender leaves. Until then
/// its handshake is unfinished, so it can send nothing. Every handshake, held or not, ends after
/// ``handshakeTimeout`` (CONTRACT.md v3: 10 s), so a connection that never greets is closed then,
/// and a held sender reconnects and queues again.
///
/// Its decisions are ``ZAPAdmission``'s, a state machine without sockets; this class is the
/// thread that feeds it and carries them out. Before, the admitted were the open connections less
/// the held requests, so 300 connections that never greeted took every place and a real device
/// waited.
public final class ZAPHandler: Sendable {
    enum Domain: String {
        case ingest = "laterbase-ingest"
        case publish = "laterbase-publish"

        var socket: Principal.Socket { self == .ingest ? .ingest : .publish }
    }

    private static let monitorEndpoint = "inproc://laterbase.ingest.monitor"
    static var handshakeTimeout: Duration { ZAPAdmission<Held>.handshakeTimeout }

    /// Who may connect; with credentials, both sockets are CURVE servers.
    public let access: Access
    /// The node's CURVE key pair.
    public let keyPair: CurveKeyPair
    private let context: ZMQContext
    private let zap: ZMQSocket
    private let monitor = Mutex<ZMQSocket?>(nil)
    private let maxSenders = Atomic<Int>(0)
    private let thread = SocketThread(name: "laterbase-zap")
    private let open = Atomic<Int>(0)
    private let admittedCount = Atomic<Int>(0)
    private let held: Counter
    private let connections: Gauge
    private let waiting: Gauge
    private let admittedGauge: Gauge
    private let refusals: [String: Counter]
    private let logger: Logger

    /// Binds the handler's ROUTER in `context`; guard sockets with ``protect(ingest:maxSenders:)``
    /// and ``protect(publish:)`` before they bind, then ``start()``.
    public init(context: ZMQContext, access: Access, keyPair: CurveKeyPair, metrics: SyncMetrics, logger: Logger) throws(ZMQError) {
        self.context = context
        self.access = access
        self.keyPair = keyPair
        self.logger = logger
        zap = try context.socket(.router)
        try zap.bind(ZAPRequest.endpoint)
        held = Counter(label: "laterbase_ingest_senders_held_total", factory: metrics.factory)
        connections = Gauge(label: "laterbase_ingest_connections", factory: metrics.factory)
        waiting = Gauge(label: "laterbase_ingest_senders_waiting", factory: metrics.factory)
        admittedGauge = Gauge(label: "laterbase_ingest_senders_admitted", factory: metrics.factory)
        var refusals: [String: Counter] = [:]
        for socket in Principal.Socket.allCases {
            for reason in ["unknown_key", "forbidden", "mechanism"] {
                refusals["\(socket.rawValue)/\(reason)"] = Counter(
                    label: "laterbase_zmq_handshakes_refused_total", dimensions: [("socket", socket.rawValue), ("reason", reason)], factory: metrics.factory)
            }
        }
        self.refusals = refusals
    }

    /// Whether the node's sockets are CURVE servers (the node has credentials).
    public var curve: Bool { access.isEnforced }

    /// Guards the ingest socket, before it binds: CURVE with credentials, and at most
    /// `maxSenders` senders at once.
    func protect(ingest: ZMQSocket, maxSenders: Int) throws(ZMQError) {
        try ingest.monitor(Self.monitorEndpoint, events: [.accepted, .disconnected, .closed, .handshakeSucceeded, .handshakeFailed])
        let m = try context.socket(.pair)
        try m.connect(Self.monitorEndpoint)
        monitor.withLock { $0 = m }
        self.maxSenders.store(maxSenders, ordering: .relaxed)
        try ingest.setZAPDomain(Domain.ingest.rawValue)
        try ingest.setHandshakeInterval(Int32(Self.handshakeTimeout.components.seconds * 1000))
        if curve { try ingest.setCurveServer(keyPair) }
    }

    /// Guards the publish socket, before it binds: with credentials, CURVE and only principals
    /// that may read every root.
    func protect(publish: ZMQSocket) throws(ZMQError) {
        guard curve else { return }
        try publish.setZAPDomain(Domain.publish.rawValue)
        try publish.setCurveServer(keyPair)
    }

    /// Open ingest connections (admitted, held, or in their handshake).
    var openConnections: Int { open.load(ordering: .relaxed) }

    /// Ingest senders admitted and connected now (their handshake completed).
    var admittedSenders: Int { admittedCount.load(ordering: .relaxed) }

    /// A request held until a connection closes.
    struct Held {
        var envelope: [[UInt8]]
        var request: ZAPRequest
        var userID: String
    }

    /// Why the handler stopped admitting without being asked to, or nil.
    public var failure: String? { thread.failure }

    public func start() {
        let monitor = self.monitor.withLock { $0 }
        let maxSenders = self.maxSenders.load(ordering: .relaxed)
        thread.start { [self] in
            var admission = ZAPAdmission<Held>(maxSenders: maxSenders)
            let sockets = [zap] + (monitor.map { [$0] } ?? [])
            while !thread.isStopping {
                let ready: [Bool]
                do {
                    ready = try zmqPoll(sockets, timeout: .milliseconds(50))
                } catch {
                    // Nobody is admitted from now on: every new connection waits, then times out.
                    logger.critical("the ZAP handler stopped", metadata: ["error": "\(error)"])
                    thread.fail("polling its sockets failed: \(error)")
                    break
                }
                // A connection asking was accepted before its handshake began: its event is already
                // in the monitor's queue, so the monitor is read first.
                if let monitor { readMonitor(monitor, &admission) }
                if ready[0] {
                    while let frames = try? zap.receive(wait: false) {
                        // ROUTER: [routing id, empty, request...]
                        guard let split = frames.firstIndex(of: []), let request = ZAPRequest(frames: Array(frames[(split + 1)...])) else { continue }
                        let envelope = Array(frames[...split])
                        guard let domain = Domain(rawValue: request.domain) else {
                            _ = try? zap.send(envelope + request.reply(admit: true, text: "OK"))
                            continue
                        }
                        switch ZAPAdmission<Held>.identify(request, on: domain.socket, access: access) {
                        case .failure(let refusal):
                            refusals["\(domain.socket.rawValue)/\(refusal.reason)"]?.increment()
                            logger.notice("ZeroMQ handshake refused", metadata: [
                                "socket": "\(domain.socket.rawValue)", "address": "\(request.address)", "reason": "\(refusal.text)",
                            ])
                            _ = try? zap.send(envelope + request.reply(admit: false, text: refusal.text))
                        case .success(let userID) where domain == .publish:
                            _ = try? zap.send(envelope + request.reply(admit: true, text: "OK", userID: userID))
                        case .success(let userID):
                            if admission.asked(Held(envelope: envelope, request: request, userID: userID), now: .now) { held.increment() }
                        }
                    }
                }
                // Expired requests: libzmq closed those connections; their senders reconnect.
                // Then admit in order while the admitted are under the limit.
                if let monitor { readMonitor(monitor, &admission) }
                let settled = admission.settle(now: .now)
                for first in settled.admit {
                    _ = try? zap.send(first.envelope + first.request.reply(admit: true, text: "OK", userID: first.userID))
                }
                if let warning = settled.warning {
                    logger.warning("ingest senders waiting: the node admits no more at once", metadata: [
                        "waiting": "\(warning.waiting)", "open": "\(warning.open)", "admitted": "\(warning.admitted)", "max_senders": "\(maxSenders)",
                    ])
                }
                waiting.record(admission.waiting)
            }
            zap.close()
            monitor?.close()
        }
    }

    /// Closes the sockets of a handler that never started (a node whose `init` failed after
    /// making it), at once.
    @available(*, noasync, message: "for a handler that never started; await stop() otherwise")
    public func discard() {
        guard !thread.stop() else { return }
        zap.close()
        monitor.withLock { $0?.close() }
    }

    /// Stops admitting and closes the handler's sockets, without blocking a thread.
    public func stop() async {
        if await !thread.stop() {
            zap.close()
            monitor.withLock { $0?.close() }
        }
    }

    private func readMonitor(_ monitor: ZMQSocket, _ state: inout ZAPAdmission<Held>) {
        while let frames = try? monitor.receive(wait: false) {
            guard let event = ZMQMonitorEvent(frames: frames) else { continue }
            state.observed(event.kind, connection: event.value)
        }
        open.store(state.live.count, ordering: .relaxed)
        admittedCount.store(state.admitted, ordering: .relaxed)
        connections.record(state.live.count)
        admittedGauge.record(state.admitted)
    }
}
