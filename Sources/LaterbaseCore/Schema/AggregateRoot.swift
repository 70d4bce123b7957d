/// What a fold sees of an event besides its typed payload.
public struct EventContext: Sendable {
    public let id: EventID
    public let aggregate: String
    public let type: String
    public let version: Int
    /// Valid time, ms since the epoch.
    public let time: Int64
    public let hlc: HLC
    public let origin: String
    public let seq: UInt64
}

/// An application's aggregate root: its event schema and the fold that turns a stream of events
/// into the aggregate's state.
///
/// ```swift
/// struct Counters: AggregateRoot {
///     enum Event: Sendable { case added(Added) }
///     struct Added: Codable, Sendable { var n: Int }
///     struct State: Codable, Sendable { var total = 0 }
///     static let name = "counters"
///     static let schema = EventSchema<Event>().event("counter.added", Added.self) { .added($0) }
///     static let initialState = State()
///     static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
///         switch event { case .added(let a): state.total += a.n }
///     }
/// }
/// ```
public protocol AggregateRoot: Sendable {
    /// The application's event type, usually an enum with one case per event type.
    associatedtype Event: Sendable
    /// The aggregate's state, served as JSON.
    associatedtype State: Codable & Sendable

    /// The root's name: `^[a-z][a-z0-9_-]{0,63}$`.
    static var name: String { get }
    /// Which (type, version) pairs are accepted and how each decodes (and upcasts) to `Event`.
    static var schema: EventSchema<Event> { get }
    /// The state before any event.
    static var initialState: State { get }
    /// Folds one event into the state. Runs in (time, hlc, origin, seq) order; keep it pure.
    static func fold(_ state: inout State, _ event: Event, _ context: EventContext)
}
