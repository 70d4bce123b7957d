import Foundation

/// Why an event's type, version or data was refused by its root's schema.
public struct SchemaViolation: Error, CustomStringConvertible, Sendable {
    /// The field at fault, e.g. `type` or `data.origin`.
    public let field: String
    public let reason: String
    public var description: String { "\(field): \(reason)" }
}

/// The events a root accepts: for each type name and version, the payload it decodes to and how
/// that becomes the application's `Event`. Registering an older version with a closure that
/// converts to the current case is how events are upcast.
public struct EventSchema<Event: Sendable>: Sendable {
    struct Key: Hashable {
        let type: String
        let version: Int
    }

    private var decoders: [Key: @Sendable ([UInt8]) throws -> Event] = [:]

    public init() {}

    /// Accepts events of `type` at `version` whose `data` decodes as `payload`.
    /// - Parameters:
    ///   - type: the event type name, e.g. `shipment.departed`.
    ///   - version: the schema version, 1 by default.
    ///   - payload: the `Decodable` type of `data`.
    ///   - make: turns the payload into the application's event (upcasting older versions).
    /// - Returns: the schema with this event added.
    public func event<Payload: Decodable & Sendable>(
        _ type: String, version: Int = 1, _ payload: Payload.Type, _ make: @escaping @Sendable (Payload) -> Event
    ) -> EventSchema {
        precondition(Names.isValidEventType(type) && Names.versions.contains(version), "invalid event type or version")
        var copy = self
        copy.decoders[Key(type: type, version: version)] = { bytes in
            make(try sharedDecoder.decode(Payload.self, from: Data(bytes)))
        }
        return copy
    }

    /// The (type, version) pairs this schema accepts.
    public var accepted: [(type: String, version: Int)] {
        decoders.keys.map { ($0.type, $0.version) }.sorted { ($0.type, $0.version) < ($1.type, $1.version) }
    }

    /// Decodes an event's data.
    /// - Throws: ``SchemaViolation`` naming what is wrong.
    public func decode(type: String, version: Int, data: [UInt8]) throws(SchemaViolation) -> Event {
        guard let decoder = decoders[Key(type: type, version: version)] else {
            if decoders.keys.contains(where: { $0.type == type }) {
                let known = decoders.keys.filter { $0.type == type }.map { String($0.version) }.sorted().joined(separator: ", ")
                throw SchemaViolation(field: "version", reason: "\(type) has no version \(version) (known: \(known))")
            }
            throw SchemaViolation(field: "type", reason: "unknown event type '\(type)'")
        }
        do {
            return try decoder(data)
        } catch let error as DecodingError {
            throw Self.violation(error)
        } catch {
            throw SchemaViolation(field: "data", reason: "\(error)")
        }
    }

    private static func violation(_ error: DecodingError) -> SchemaViolation {
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            (["data"] + (context.codingPath + (last.map { [$0] } ?? [])).map(\.stringValue)).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return SchemaViolation(field: path(context, key), reason: "is required")
        case .valueNotFound(let type, let context):
            return SchemaViolation(field: path(context), reason: "must be a \(type), not null")
        case .typeMismatch(let type, let context):
            return SchemaViolation(field: path(context), reason: "must be a \(type)")
        case .dataCorrupted(let context):
            return SchemaViolation(field: path(context), reason: context.debugDescription)
        @unknown default:
            return SchemaViolation(field: "data", reason: "\(error)")
        }
    }
}
