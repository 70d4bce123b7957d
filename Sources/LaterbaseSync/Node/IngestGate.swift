import Logging
import Metrics
import Synchronization
import ZeroMQ

/// Admits senders to the ZeroMQ ingest up to a number for the whole node, so that what libzmq
/// holds unread stays bounded however many devices connect.
///
/// libzmq queues received messages per connection (the receive high-water mark, in messages) and
/// allocates a message as soon as its header says how big it is; so every admitted connection can
/// hold (high-water mark + 1) messages of up to the size limit, and only the number of connections
/// bounds the whole. The gate is the context's ZAP handler (RFC 27; the ingest socket has a ZAP
/// domain, so libzmq asks it about every connection, also without CURVE) and reads the ingest
/// socket's monitor to know how many connections are open.
///
/// A sender over the limit is not refused (libzmq 4.3 never reconnects after a refusal): its
/// request is held, in order of arrival, and answered when a connection closes. Until then its
/// handshake is unfinished, so it can send nothing. A held handshake ends after
/// ``handshakeTimeout`` and the sender reconnects and queues again.
///
/// The ZAP request does not say which connection asks, so the admitted count is the open
/// connections less those held: never more than the truth while the held ones are alive (a sender
/// that gives up while held is taken for admitted until its request expires).
final class IngestGate: Sendable {
    static let domain = "laterbase-ingest"
    private static let monitorEndpoint = "inproc://laterbase.ingest.monitor"
    static let handshakeTimeout: Duration = .seconds(30)

    let maxSenders: Int
    private let zap: ZMQSocket
    private let monitor: ZMQSocket
    private let thread = SocketThread(name: "laterbase-zap")
    private let open = Atomic<Int>(0)
    private let held: Counter
    private let connections: Gauge
    private let waiting: Gauge
    private let logger: Logger

    /// Sets up the gate for `ingest`, before it binds.
    init(context: ZMQContext, ingest: ZMQSocket, maxSenders: Int, metrics: SyncMetrics, logger: Logger) throws(ZMQError) {
        self.maxSenders = maxSenders
        self.logger = logger
        zap = try context.socket(.router)
        try zap.bind(ZAPRequest.endpoint)
        try ingest.monitor(Self.monitorEndpoint, events: [.accepted, .disconnected, .closed])
        monitor = try context.socket(.pair)
        try monitor.connect(Self.monitorEndpoint)
        try ingest.setZAPDomain(Self.domain)
        try ingest.setHandshakeInterval(Int32(Self.handshakeTimeout.components.seconds * 1000))
        held = Counter(label: "laterbase_ingest_senders_held_total", factory: metrics.factory)
        connections = Gauge(label: "laterbase_ingest_connections", factory: metrics.factory)
        waiting = Gauge(label: "laterbase_ingest_senders_waiting", factory: metrics.factory)
    }

    /// Open ingest connections (admitted, held, or in their handshake).
    var openConnections: Int { open.load(ordering: .relaxed) }

    /// A request held until a connection closes.
    private struct Held {
        var envelope: [[UInt8]]
        var request: ZAPRequest
        var since: ContinuousClock.Instant
    }

    func start() {
        thread.start { [self] in
            var live: Set<UInt32> = []
            var queue: [Held] = []
            var lastWarning: ContinuousClock.Instant?
            while !thread.isStopping {
                guard let ready = try? zmqPoll([zap, monitor], timeout: .milliseconds(50)) else { break }
                // A connection asking was accepted before its handshake began: its event is already
                // in the monitor's queue, so the monitor is read first.
                readMonitor(&live)
                if ready[0] {
                    while let frames = try? zap.receive(wait: false) {
                        // ROUTER: [routing id, empty, request...]
                        guard let split = frames.firstIndex(of: []), let request = ZAPRequest(frames: Array(frames[(split + 1)...])) else { continue }
                        let envelope = Array(frames[...split])
                        if request.domain != Self.domain {
                            _ = try? zap.send(envelope + request.reply(admit: true, text: "OK"))
                        } else {
                            queue.append(Held(envelope: envelope, request: request, since: .now))
                            if live.count - queue.count >= maxSenders { held.increment() }
                        }
                    }
                }
                // Expired requests: libzmq closed those connections; their senders reconnect.
                let now = ContinuousClock.now
                queue.removeAll { now - $0.since > Self.handshakeTimeout + .seconds(1) }
                // Admit in order while the admitted (open less held) are under the limit.
                while let first = queue.first, live.count - queue.count < maxSenders {
                    queue.removeFirst()
                    _ = try? zap.send(first.envelope + first.request.reply(admit: true, text: "OK"))
                }
                if !queue.isEmpty, lastWarning.map({ now - $0 > .seconds(10) }) ?? true {
                    logger.warning("ingest senders waiting: the node admits no more at once", metadata: [
                        "waiting": "\(queue.count)", "open": "\(live.count)", "max_senders": "\(maxSenders)",
                    ])
                    lastWarning = now
                }
                waiting.record(queue.count)
            }
            zap.close()
            monitor.close()
        }
    }

    func stop() {
        if !thread.stop() {
            zap.close()
            monitor.close()
        }
    }

    private func readMonitor(_ live: inout Set<UInt32>) {
        while let frames = try? monitor.receive(wait: false) {
            guard let event = ZMQMonitorEvent(frames: frames) else { continue }
            if event.kind == .accepted {
                live.insert(event.value)
            } else if event.kind == .disconnected || event.kind == .closed {
                live.remove(event.value)
            }
        }
        open.store(live.count, ordering: .relaxed)
        connections.record(live.count)
    }
}
