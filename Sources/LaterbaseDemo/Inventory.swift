import LaterbaseCore

/// The demo's stock levels, one aggregate per SKU and site (e.g. `SKU-1@AKL`). A count sets the
/// level, so a back-dated count changes every level after it.
public struct Inventory: AggregateRoot {
    public struct Quantity: Codable, Sendable { public var qty: Int }

    public enum Event: Sendable {
        case received(Int)
        case picked(Int)
        case counted(Int)
    }

    public struct State: Codable, Sendable, Equatable {
        public var on_hand: Int = 0
    }

    public static let name = "inventory"

    public static let schema = EventSchema<Event>()
        .event("stock.received", Quantity.self) { .received($0.qty) }
        .event("stock.picked", Quantity.self) { .picked($0.qty) }
        .event("stock.counted", Quantity.self) { .counted($0.qty) }

    public static let initialState = State()

    public static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
        switch event {
        case .received(let n): state.on_hand += n
        case .picked(let n): state.on_hand -= n
        case .counted(let n): state.on_hand = n
        }
    }
}
