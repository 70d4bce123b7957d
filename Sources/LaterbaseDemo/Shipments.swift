import LaterbaseCore

/// The demo's shipments: created, departed (a leg begins), arrived, delivered.
public struct Shipments: AggregateRoot {
    public struct Created: Codable, Sendable {
        public var origin: String
        public var destination: String
    }

    public struct Departed: Codable, Sendable { public var location: String }
    public struct Arrived: Codable, Sendable { public var location: String }
    public struct Delivered: Codable, Sendable { public var receiver: String }

    public enum Event: Sendable {
        case created(Created)
        case departed(Departed)
        case arrived(Arrived)
        case delivered(Delivered)
    }

    public enum Status: String, Codable, Sendable { case created, in_transit, arrived, delivered }

    public struct State: Codable, Sendable, Equatable {
        public var status: Status?
        public var origin: String?
        public var destination: String?
        public var location: String?
        public var legs: Int = 0
        public var receiver: String?
    }

    public static let name = "shipments"

    public static let schema = EventSchema<Event>()
        .event("shipment.created", Created.self) { .created($0) }
        .event("shipment.departed", Departed.self) { .departed($0) }
        .event("shipment.arrived", Arrived.self) { .arrived($0) }
        .event("shipment.delivered", Delivered.self) { .delivered($0) }

    public static let initialState = State()

    public static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
        switch event {
        case .created(let e):
            state.status = state.status ?? .created
            state.origin = e.origin
            state.destination = e.destination
            state.location = state.location ?? e.origin
        case .departed(let e):
            state.status = .in_transit
            state.location = e.location
            state.legs += 1
        case .arrived(let e):
            state.status = .arrived
            state.location = e.location
        case .delivered(let e):
            state.status = .delivered
            state.receiver = e.receiver
        }
    }
}
