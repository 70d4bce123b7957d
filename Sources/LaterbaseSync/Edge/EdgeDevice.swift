import Foundation
import LaterbaseCore
import Logging
import Metrics
import ZeroMQ

/// Laterbase on a device in a truck cab or a warehouse: a local store that takes writes whether
/// or not the upstream node is reachable, and syncs both ways with it whenever it is.
///
/// ```swift
/// let device = try EdgeDevice(directory: "/var/lib/scanner", roots: Demo.roots,
///                             upstream: "http://hq.example:8080", replicaID: "truck-7")
/// await device.start()
/// try await device.record(root: "shipments", [EventInput(id: nil, aggregate: "SHP-1", type: "shipment.departed",
///                                                       data: .object([("from", .string("AKL"))]))])
/// let synced = await device.sync(timeout: .seconds(30))   // true once upstream holds it all
/// let shipment = try device.aggregate(root: "shipments", id: "SHP-1")
/// await device.stop()
/// ```
///
/// The device names the upstream; the upstream needs no word of the device. Events recorded here
/// get this device's dots and hlc, so back-dated and offline events fold where they happened on
/// every replica. The acknowledgment is the upstream's `head`: ``sync(timeout:)`` returns true once
/// it covers everything recorded here.
public final class EdgeDevice: Sendable {
    public let store: EventStore
    public let writer: Writer
    private let replication: Replication
    private let context: ZMQContext
    /// Held from `init` until ``stop()`` has written everything.
    private let folderLock: DataFolderLock

    /// Opens (creating if needed) the device's store.
    /// - Throws: when another device or node holds `directory` (``DataFolderLock``).
    /// - Parameters:
    ///   - upstream: the HTTP URL of the node to sync with.
    ///   - replicaID: this device's origin; by default the one kept in its store, or a new one.
    ///   - token: the bearer token the upstream knows this device by (a `device` principal whose
    ///     `origin` is this device's replica id); nil for an open upstream.
    ///   - keyPair: the CURVE key pair the upstream's principal names; by default the device's
    ///     own, made once and kept in `directory` (``NodeKey``).
    public init(
        directory: String, roots: [RootDefinition], upstream: String, replicaID: String? = nil, token: String? = nil, keyPair: CurveKeyPair? = nil,
        storeOptions: EventStore.Options = EventStore.Options(), logger: Logger = Logger(label: "laterbase.device")
    ) throws {
        folderLock = try DataFolderLock(directory: directory)
        store = try EventStore(directory: directory, roots: roots, replicaID: replicaID, options: storeOptions, logger: logger)
        writer = Writer(store: store, logger: logger)
        context = try ZMQContext()
        let pair = try keyPair ?? NodeKey.load(dataDirectory: directory, secretKeyFile: nil)
        self.keyPair = pair
        replication = try Replication(
            peers: [upstream], writer: writer, context: context, dataDirectory: directory, credentials: PeerCredentials(token: token, keyPair: pair),
            metrics: SyncMetrics(factory: NOOPMetricsHandler.instance), logger: logger)
    }

    /// The CURVE key pair this device presents upstream: its public key is the `curve_public_key`
    /// of its principal there.
    public let keyPair: CurveKeyPair

    /// Starts the writer and the sync thread; returns once the store's heads are read (reads from
    /// then on see what a newer schema folds).
    public func start() async {
        writer.start()
        await writer.ready()
        replication.start()
    }

    /// Records events locally: durable on the device when this returns, sent upstream when it can be.
    public func record(root: String, _ events: [EventInput]) async throws(LaterbaseError) -> WriteOutcome {
        try await writer.write(store.prepare(root: root, events: events))
    }

    /// The aggregate as this device knows it (the contract's JSON), or nil when it has no events.
    public func aggregate(root: String, id: String, asOf: Int64? = nil) throws(LaterbaseError) -> JSON? {
        guard let bytes = try store.aggregate(root: root, id: id, asOf: asOf) else { return nil }
        return try? JSONParser.parse(bytes)
    }

    /// Whether the upstream was reachable at the last probe, and what it has acknowledged.
    public var upstream: PeerStatus { replication.peers[0] }

    /// Waits until the upstream holds every event this device holds and this device holds every
    /// event the upstream held at a probe made after the call.
    /// - Returns: false if that did not happen within `timeout` (the upstream is unreachable, say).
    public func sync(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        let start = upstream.probes
        @Sendable func synced(_ status: PeerStatus) -> Bool {
            status.probes > start && status.reachable && status.catchingUp.isEmpty && Set(status.roots).isSubset(of: status.inSync)
        }
        replication.probeNow()
        // Each probe that answers without finding both sides in sync asks for the next one.
        var probed = start
        while true {
            let seen = probed
            guard let status = await replication.status(ofPeer: 0, until: { synced($0) || $0.probes > seen + 1 }, deadline: deadline) else { return false }
            if synced(status) { return true }
            probed = status.probes - 1
            replication.probeNow()
        }
    }

    /// Stops syncing, writes what is queued, and closes the ZeroMQ context.
    public func stop() async {
        await replication.stop()
        await writer.shutdown()
        context.shutdown()
        context.terminate()
        folderLock.release()
    }
}
