import Foundation
import LaterbaseCore
import Logging
import Synchronization
import ZeroMQ

/// The ZeroMQ ingest: a PULL socket the node binds, read on its own thread. Each `[root, body]`
/// message is one atomic batch, checked exactly as POST /e/{root} checks it, and fed to the same
/// write queue. There is no reply: senders learn what is durable from `head`.
///
/// Backpressure: when the write queue is full, the thread waits for room before reading the next
/// message, so the socket's receive queue (``Options/receiveHighWaterMark``) and then the senders'
/// PUSH queues fill and their sends block. Nothing is dropped.
///
/// Memory is bounded per node: each connection can hold (high-water mark + 1) messages of up to
/// the size limit unread, and the node's ``ZAPHandler`` admits at most ``maxSenders`` connections,
/// as many as ``Options/memoryBudgetBytes`` allows. On a TCP endpoint senders reach the socket
/// through an ``IngressRelay``, which drops a connection that sent more than
/// ``messageBudget`` bytes no message was taken of: libzmq holds the frames of a message until
/// its last one comes, out of the application's sight, so without it one sender marking frames
/// "more" could grow the node without bound.
///
/// Access: with credentials the socket is a CURVE server, the ZAP handler admits only principals
/// that may write, and each message is checked with its sender's principal exactly as
/// `POST /e/{root}` checks a request's (``Principal/authorizeWrite(_:)``).
///
/// A refused message stores nothing, is counted in `laterbase_ingest_refused_total{reason}` (and
/// `laterbase_errors_total{code}`), and is announced on the publish socket under `_rejected`.
public final class Ingest: Sendable {
    public struct Options: Sendable {
        /// Messages held in the socket's receive queue per sender before the sender is held back.
        /// With the write queue's capacity this bounds what a flood can make the node hold:
        /// about this many messages per sender, plus the queue's events.
        public var receiveHighWaterMark: Int32 = 2
        /// Most bytes that unread ingest messages may hold, all senders together; with the
        /// message size limit it sets how many senders are admitted at once.
        public var memoryBudgetBytes: Int = 2 << 30
        /// Senders admitted at once; nil: as many as ``memoryBudgetBytes`` allows.
        public var maxSenders: Int?
        /// How long the thread waits in `zmq_poll` before looking at the stop flag.
        public var pollInterval: Duration = .milliseconds(50)
        /// Whether a TCP endpoint is served through an ``IngressRelay`` (the bound on unfinished
        /// messages). Off only to measure what it costs (`laterbase-bench`).
        public var relay = true
        public init() {}
    }

    /// The endpoint senders connect to (with the port chosen, when `*` was asked for).
    public let endpoint: String
    /// Senders admitted at once.
    public let maxSenders: Int
    /// The most unread ingest messages can hold: ``maxSenders`` × (high-water mark + 1) × the size limit.
    public var memoryBound: Int { maxSenders * (Int(options.receiveHighWaterMark) + 1) * maxMessageBytes }
    private let socket: ZMQSocket
    private let zap: ZAPHandler
    private let store: EventStore
    private let writer: Writer
    private let publisher: Publisher?
    private let metrics: SyncMetrics
    private let storeMetrics: StoreMetrics
    private let options: Options
    /// Largest message, all frames together.
    private let maxMessageBytes: Int
    private let logger: Logger
    private let thread = SocketThread(name: "laterbase-ingest")
    /// In front of the socket on a TCP endpoint; nil for `ipc://` (or with ``Options/relay`` off).
    public let relay: IngressRelay?
    /// Bytes a connection may send that no message was taken of (``IngressRelay/budget``): what
    /// a sender may have in the node anyway, its queue of (high-water mark) messages and the one
    /// being read, and 2 MiB for the kernel's buffers (256 KiB a side, doubled by Linux) and framing.
    public var messageBudget: Int { Self.messageBudget(receiveHighWaterMark: options.receiveHighWaterMark, maxMessageBytes: maxMessageBytes) }

    static func messageBudget(receiveHighWaterMark: Int32, maxMessageBytes: Int) -> Int {
        (Int(receiveHighWaterMark) + 1) * maxMessageBytes + (2 << 20)
    }

    /// Binds the PULL socket; reading starts with ``start()``.
    /// - Parameter maxMessageBytes: the largest message (the node's body limit, as for HTTP); a
    ///   sender of a bigger one is disconnected.
    public init(
        context: ZMQContext, endpoint: String, zap: ZAPHandler, writer: Writer, publisher: Publisher?, maxMessageBytes: Int, metrics: SyncMetrics,
        storeMetrics: StoreMetrics, options: Options = Options(), logger: Logger
    ) throws(ZMQError) {
        let s = try context.socket(.pull)
        let bound: (maxSenders: Int, endpoint: String, relay: IngressRelay?)
        do throws(ZMQError) {
            bound = try Self.bind(s, endpoint, zap: zap, maxMessageBytes: maxMessageBytes, metrics: metrics, options: options, logger: logger)
        } catch {
            s.close()  // else the context could never terminate
            throw error
        }
        (self.maxSenders, self.endpoint, self.relay) = bound
        self.zap = zap
        self.maxMessageBytes = maxMessageBytes
        self.socket = s
        self.writer = writer
        self.store = writer.store
        self.publisher = publisher
        self.metrics = metrics
        self.storeMetrics = storeMetrics
        self.options = options
        self.logger = logger
    }

    /// Guards and binds the socket: directly, or on loopback behind the relay.
    private static func bind(
        _ s: ZMQSocket, _ endpoint: String, zap: ZAPHandler, maxMessageBytes: Int, metrics: SyncMetrics, options: Options, logger: Logger
    ) throws(ZMQError) -> (maxSenders: Int, endpoint: String, relay: IngressRelay?) {
        try s.setReceiveHighWaterMark(options.receiveHighWaterMark)
        try s.setMaxMessageSize(Int64(maxMessageBytes))
        let perSender = (Int(options.receiveHighWaterMark) + 1) * maxMessageBytes
        let maxSenders = max(1, options.maxSenders ?? options.memoryBudgetBytes / perSender)
        try zap.protect(ingest: s, maxSenders: maxSenders)
        let budget = Self.messageBudget(receiveHighWaterMark: options.receiveHighWaterMark, maxMessageBytes: maxMessageBytes)
        // The relay speaks IPv4: an IPv6 endpoint is bound directly.
        guard options.relay, let address = TCPEndpoint(endpoint), !address.isIPv6 else {
            try s.bind(endpoint)
            return (maxSenders, s.lastEndpoint ?? endpoint, nil)
        }
        // The socket on loopback, the relay where senders connect.
        try s.setReceiveBuffer(256 << 10)
        try s.bind("tcp://127.0.0.1:*")
        guard let inside = s.lastEndpoint.flatMap(TCPEndpoint.init) else {
            throw ZMQError(code: EINVAL, operation: "ingest: no loopback port for the relay")
        }
        do {
            let relay = try IngressRelay(
                listen: (address.host, address.port), target: ("127.0.0.1", inside.port), direction: .accept, budget: budget, name: "ingest",
                factory: metrics.factory, logger: logger)
            return (maxSenders, "tcp://\(address.host == "*" ? "0.0.0.0" : address.host):\(relay.listenAddress.port)", relay)
        } catch {
            throw ZMQError(code: EADDRINUSE, operation: "ingest on \(endpoint): \(error)")
        }
    }

    /// Starts the reading thread.
    public func start() {
        relay?.start()
        thread.start { [self] in
            run()
            socket.close()
        }
        logger.info("ingest listening", metadata: [
            "endpoint": "\(endpoint)", "max_senders": "\(maxSenders)", "memory_bound_mib": "\(memoryBound >> 20)",
            "relayed": "\(relay != nil)",
        ])
    }

    /// Ingest connections open now (admitted, or in their handshake).
    public var openConnections: Int { zap.openConnections }
    /// Ingest senders admitted now (their handshake completed): what `--ingest-max-senders` bounds.
    public var admittedSenders: Int { zap.admittedSenders }

    /// Why the ingest stopped taking messages without being asked to (its socket or its relay
    /// failed), or nil.
    public var failure: String? {
        thread.failure ?? relay?.failure.map { "its relay stopped: \($0)" }
    }

    /// Closes the socket of an ingest that never started (a node whose `init` failed after making
    /// it), at once.
    @available(*, noasync, message: "for an ingest that never started; await stop() otherwise")
    public func discard() {
        if !thread.stop() { socket.close() }
        relay?.stop()
    }

    /// Stops reading and closes the socket, without blocking a thread; messages not yet read were
    /// never acknowledged. Safe to call more than once, and without ``start()``.
    public func stop() async {
        if await !thread.stop() { socket.close() }
        await relay?.stop()
    }

    private func run() {
        while !thread.isStopping {
            do {
                guard try zmqPoll([socket], timeout: options.pollInterval)[0] else { continue }
                // Drain what is waiting, then look at the stop flag again.
                var read = 0
                while read < 1000, !thread.isStopping, let received = try socket.receive(wait: false, maxBytes: maxMessageBytes) {
                    relay?.delivered(libzmqDescriptor: socket.lastSourceDescriptor)
                    switch received {
                    case .frames(let frames): handle(frames, from: socket.lastUserID)
                    case .oversized(let bytes, let frames): dropOversized(bytes: bytes, frames: frames)
                    }
                    read += 1
                }
            } catch let error where error.isTermination {
                return
            } catch {
                logger.error("ingest socket failed", metadata: ["error": "\(error)"])
                thread.fail("the ingest socket failed: \(error)")
                return
            }
        }
    }

    /// - Parameter userID: the sender's principal, as the ZAP handler tagged its connection.
    private func handle(_ frames: [[UInt8]], from userID: String?) {
        metrics.ingestMessages.increment()
        let message: IngestMessage
        do {
            message = try IngestMessage(frames: frames)
        } catch {
            refuse(root: error.root, error.error, body: error.body)
            return
        }
        let root = message.root, body = message.body
        let batch: PreparedBatch
        do {
            // Over ZeroMQ only a peer or an admin with credentials replicates (an open node's
            // messages are a device's).
            let replicating = zap.curve && ((try? sender(userID))?.replicates(declared: false) ?? false)
            batch = try store.prepare(root: root, body: body, replicating: replicating)
        } catch {
            refuse(root: root, error, body: body)
            return
        }
        do {
            try sender(userID).authorizeWrite(batch)
        } catch {
            refuse(root: root, error, body: body)
            return
        }
        let count = batch.events.count
        let waited = writer.submitWaitingForRoom(batch) { [self] result in
            switch result {
            case .success: metrics.ingestEvents.increment(by: count)
            case .failure(let error): refuse(root: root, error, body: body)
            }
        }
        if waited { metrics.ingestWaits.increment() }
    }

    /// The principal a message came from: ``Principal/open`` on a node without credentials.
    private func sender(_ userID: String?) throws(LaterbaseError) -> Principal {
        guard zap.curve else { return .open }
        guard let userID, let principal = zap.access.principal(named: userID) else {
            throw LaterbaseError(.forbidden, "the sender's principal '\(userID ?? "")' is no longer in the credentials")
        }
        return principal
    }

    /// A message over the size limit in total: dropped and counted, not announced (its frames
    /// were not kept, so there is nothing to name).
    private func dropOversized(bytes: Int, frames: Int) {
        metrics.ingestMessages.increment()
        count(.tooLarge)
        logger.warning("ingest message over the size limit dropped", metadata: ["bytes": "\(bytes)", "frames": "\(frames)", "limit": "\(maxMessageBytes)"])
    }

    /// Counts a refusal by its code, in the ingest's metric and the node's error metric.
    private func count(_ code: LaterbaseError.Code) {
        metrics.refused(code)
        storeMetrics.error(code)
    }

    private func refuse(root: String, _ error: LaterbaseError, body: [UInt8]) {
        count(error.code)
        logger.debug("ingest message refused", metadata: ["root": "\(root)", "error": "\(error)"])
        publisher?.announce(rejectionOf: root, error, named: Rejection.named(in: body))
    }
}
