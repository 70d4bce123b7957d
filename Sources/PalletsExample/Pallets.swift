// The README's library example, built with the package so it keeps compiling:
// `swift run PalletsExample` serves a `pallets` root and a schema-less `notes` root on :8080.
import LaterbaseCore
import LaterbaseServer
import Logging
import ServiceLifecycle

struct Pallets: AggregateRoot {
    struct Moved: Codable, Sendable { var to: String }
    struct MovedV1: Codable, Sendable { var bay: Int }  // an older shape, upcast below
    enum Event: Sendable { case moved(Moved) }
    struct State: Codable, Sendable { var location = "unknown"; var moves = 0; var lastOrigin = "" }

    static let name = "pallets"
    static let schema = EventSchema<Event>()
        .event("pallet.moved", version: 2, Moved.self) { .moved($0) }
        .event("pallet.moved", version: 1, MovedV1.self) { .moved(Moved(to: "bay-\($0.bay)")) }
    static let initialState = State()

    static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
        switch event {
        case .moved(let m):
            state.location = m.to
            state.moves += 1
            state.lastOrigin = context.origin  // which replica recorded the move
        }
    }
}

/// A service of the application's own, beside the node in one `ServiceGroup`: once the node
/// listens (no polling) it records a move in the app's own types and reads the pallet back, then
/// waits for the group to shut down.
struct Yard: Service {
    let node: LaterbaseServer
    let logger: Logger

    func run() async throws {
        let port = try await node.waitUntilRunning()
        try await node.write(Pallets.self, aggregate: "P-1", type: "pallet.moved", version: 2, Pallets.Moved(to: "dock-1"))
        let pallet = try node.aggregate(Pallets.self, id: "P-1")  // Pallets.State?
        logger.info("pallets served", metadata: [
            "url": "http://127.0.0.1:\(port)/a/pallets/P-1", "P-1": "\(pallet?.location ?? "-") after \(pallet?.moves ?? 0) moves",
        ])
        try? await gracefulShutdown()
    }
}

@main struct App {
    static func main() async throws {
        let logger = Logger(label: "pallets")
        var configuration = ServerConfiguration()
        configuration.port = 8080
        configuration.dataDirectory = "./pallets-data"
        let node = try LaterbaseServer(roots: [.typed(Pallets.self), .jsonMerge("notes")], configuration: configuration, logger: logger)
        // Until SIGTERM/SIGINT: the group stops the yard, then the node, which writes everything
        // queued before it returns.
        try await ServiceGroup(services: [node, Yard(node: node, logger: logger)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
