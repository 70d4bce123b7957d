import LaterbaseCore
import ServiceLifecycle

/// Runs the single writer as a Service. It is listed before the HTTP server, so on graceful
/// shutdown HTTP stops first and the writer then drains the queue: nothing acknowledged is lost.
struct WriterService: Service {
    let writer: Writer

    func run() async throws {
        writer.start()
        try? await gracefulShutdown()
        await writer.shutdown()
    }
}
