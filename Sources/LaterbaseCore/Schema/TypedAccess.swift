import Foundation

extension EventStore {
    /// Waits, without blocking a thread, until every commit made so far is durable, so that a
    /// read begun next waits for no sync (``LMDB/Environment/awaitDurable()``): what an async
    /// caller does before reading.
    /// - Throws: `internal` when a sync failed (nothing newer may be shown).
    public func awaitReadable() async throws(LaterbaseError) {
        do { try await env.awaitDurable() } catch { throw LaterbaseError(storage: error, "reading") }
    }
}

/// In-process reads and writes of a typed root, for an application that embeds a node: its own
/// types in and out, no JSON of its own to write or parse.
extension EventStore {
    /// Prepares one event of `root`, as POST /e/{root} would take it: `payload` becomes the
    /// event's `data` and is checked by the root's schema like any client's.
    /// - Throws: `unknown_root`, `invalid_event` (the schema refuses it), `bad_request` (a
    ///   payload that does not encode to JSON).
    public func prepare<R: AggregateRoot, Payload: Encodable>(
        _ root: R.Type, aggregate: String, type: String, version: Int = 1, _ payload: Payload, time: Int64? = nil
    ) throws(LaterbaseError) -> PreparedBatch {
        let data: JSON
        do {
            data = try JSONParser.parse(Array(try stateEncoder.encode(payload)))
        } catch {
            throw LaterbaseError(.badRequest, "the payload of a \(type) event does not encode to JSON: \(error)")
        }
        return try prepare(root: R.name, events: [EventInput(id: nil, aggregate: aggregate, type: type, version: version, data: data, time: time)])
    }

    /// The aggregate's state as the root's `State`, or nil when it has no event; `asOf` (ms) as
    /// `GET /a/{root}/{id}?as_of=` takes it.
    public func state<R: AggregateRoot>(_ root: R.Type, id: String, asOf: Int64? = nil) throws(LaterbaseError) -> R.State? {
        guard let bytes = try aggregate(root: R.name, id: id, asOf: asOf) else { return nil }
        do {
            guard let state = try JSONParser.parse(bytes)["state"] else { throw LaterbaseError(.internal, "aggregate \(id) has no state") }
            return try sharedDecoder.decode(R.State.self, from: Data(state.bytes))
        } catch let error as LaterbaseError {
            throw error
        } catch {
            throw LaterbaseError(.internal, "the state of \(R.name)/\(id) does not decode as \(R.State.self): \(error)")
        }
    }
}
