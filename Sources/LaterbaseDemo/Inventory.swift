import LaterbaseCore

/// The demo's stock levels, one aggregate per SKU and site (e.g. `SKU-1@AKL`). A count sets the
/// level, so a back-dated count changes every level after it.
///
/// The fold is total, as every fold must be (it runs on the writer thread and is replayed on
/// every refold): `qty` is bounded to ±1,000,000,000 by the schema, so one event cannot overflow
/// anything, and the level saturates at the ends of `Int` rather than trapping.
public struct Inventory: AggregateRoot {
    public struct Quantity: Codable, Sendable {
        /// The largest quantity one event may carry, either way.
        public static let limit = 1_000_000_000
        public var qty: Int

        public init(qty: Int) { self.qty = qty }

        /// Reads `qty` as an integer within ±``limit``; an integral JSON number such as `1.0` or
        /// `1e2` counts as that integer. Anything else is refused (422 naming `data.qty`).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let value: Int?
            if let n = try? container.decode(Int.self, forKey: .qty) {
                value = n
            } else {
                let d = try container.decode(Double.self, forKey: .qty)
                value = d.rounded() == d && abs(d) <= Double(Self.limit) ? Int(d) : nil  // also false for NaN and ±inf
            }
            guard let value, (-Self.limit...Self.limit).contains(value) else {
                throw DecodingError.dataCorruptedError(forKey: .qty, in: container, debugDescription: "must be an integer from -\(Self.limit) to \(Self.limit)")
            }
            qty = value
        }
    }

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
        case .received(let n): state.on_hand = state.on_hand.saturatingAdd(n)
        case .picked(let n): state.on_hand = state.on_hand.saturatingAdd(-n)
        case .counted(let n): state.on_hand = n
        }
    }
}
