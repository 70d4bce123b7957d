import Foundation
import LaterbaseCore
import LaterbaseSync
import ServiceLifecycle

/// Runs the publisher's thread. Listed first, so it stops last: after the writer has drained,
/// every commit it made is published.
struct PublisherService: Service {
    let publisher: Publisher?

    func run() async throws {
        publisher?.start()
        try? await gracefulShutdown()
        await publisher?.close()
    }
}

/// Runs the single writer as a Service. It is listed before the HTTP server, so on graceful
/// shutdown HTTP stops first and the writer then drains the queue: nothing acknowledged is lost.
struct WriterService: Service {
    let writer: Writer

    func run() async throws {
        writer.start()
        await writer.ready()
        try? await gracefulShutdown()
        await writer.shutdown()
    }
}

/// Runs the ZeroMQ ingest thread and the peer links. Listed after the writer and before HTTP, so
/// on shutdown it stops after HTTP and before the writer drains: everything ingest queued is
/// written.
struct SyncService: Service {
    let zap: ZAPHandler
    let ingest: Ingest?
    let replication: Replication?

    func run() async throws {
        zap.start()
        ingest?.start()
        replication?.start()
        try? await gracefulShutdown()
        // Each returns once its thread has ended; none blocks a thread of the pool.
        await ingest?.stop()
        await zap.stop()
        await replication?.stop()
    }
}
