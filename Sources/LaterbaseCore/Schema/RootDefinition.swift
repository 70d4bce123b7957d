import Foundation

/// A root as the store sees it: a name and a type-erased fold. Make one from an
/// ``AggregateRoot`` with ``typed(_:)``, or a schema-less one with ``jsonMerge(_:)``.
public struct RootDefinition: Sendable {
    /// The root's name.
    public let name: String
    let fold: any Fold

    /// A root whose events are checked against `root`'s schema and folded by its `fold`.
    public static func typed<R: AggregateRoot>(_ root: R.Type) -> RootDefinition {
        precondition(Names.isValidRoot(R.name), "invalid root name '\(R.name)'")
        return RootDefinition(name: R.name, fold: TypedFold<R>())
    }

    /// A schema-less root: any event type is accepted, and the aggregate is the RFC 7386 merge
    /// of every event's `data`, in fold order.
    public static func jsonMerge(_ name: String) -> RootDefinition {
        precondition(Names.isValidRoot(name), "invalid root name '\(name)'")
        return RootDefinition(name: name, fold: MergeFold())
    }
}

/// The type-erased seam between the store and an application's fold.
protocol Fold: Sendable {
    /// Checks an event against the schema; returns what ``Accumulator/apply(_:_:)`` takes.
    /// `data` is the parsed `dataBytes` where the caller has it.
    func decode(type: String, version: Int, data: JSON?, dataBytes: [UInt8]) throws(SchemaViolation) -> any Sendable
    /// A fresh accumulator at the initial state, or at a stored state.
    func accumulator(state: [UInt8]?) throws -> any Accumulator
}

/// A state being folded. Owned by one thread at a time.
protocol Accumulator: AnyObject {
    /// Folds `decoded`, the payload of `event`. (The event, not an ``EventContext``: a fold that
    /// reads no context, as the JSON merge, is spared building one per event.)
    func apply(_ decoded: any Sendable, of event: borrowing RecordedEvent)
    /// The state as JSON.
    /// - Throws: when the application's state does not encode (e.g. a non-finite Double):
    ///   the write fails rather than storing a state that says something else.
    func encoded() throws -> [UInt8]
    func copy() -> any Accumulator
}

struct TypedFold<R: AggregateRoot>: Fold {
    func decode(type: String, version: Int, data: JSON?, dataBytes: [UInt8]) throws(SchemaViolation) -> any Sendable {
        try R.schema.decode(type: type, version: version, data: dataBytes)
    }

    func accumulator(state: [UInt8]?) throws -> any Accumulator {
        guard let state else { return TypedAccumulator<R>(R.initialState) }
        return TypedAccumulator<R>(try sharedDecoder.decode(R.State.self, from: Data(state)))
    }
}

final class TypedAccumulator<R: AggregateRoot>: Accumulator {
    var state: R.State
    init(_ state: R.State) { self.state = state }

    func apply(_ decoded: any Sendable, of event: borrowing RecordedEvent) {
        R.fold(&state, decoded as! R.Event, event.foldContext)
    }

    func encoded() throws -> [UInt8] { Array(try stateEncoder.encode(state)) }

    func copy() -> any Accumulator { TypedAccumulator(state) }
}

struct MergeFold: Fold {
    func decode(type: String, version: Int, data: JSON?, dataBytes: [UInt8]) throws(SchemaViolation) -> any Sendable {
        if let data { return data }
        do { return try JSONParser.parse(dataBytes) } catch { throw SchemaViolation(field: "data", reason: error.description) }
    }

    func accumulator(state: [UInt8]?) throws -> any Accumulator {
        MergeAccumulator(try state.map { try JSONParser.parse($0) } ?? .object([]))
    }
}

final class MergeAccumulator: Accumulator {
    var state: JSON
    init(_ state: JSON) { self.state = state }
    func apply(_ decoded: any Sendable, of event: borrowing RecordedEvent) { state.merge(decoded as! JSON) }
    func encoded() throws -> [UInt8] { state.bytes }
    func copy() -> any Accumulator { MergeAccumulator(state) }
}

/// One encoder for every typed state, made once rather than per fold. Foundation's encoder and
/// decoder are Sendable: safe to share once configured.
let stateEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

/// One decoder for event payloads and typed states.
let sharedDecoder = JSONDecoder()
