import LMDB

/// A refusal the wire contract names: its code, a message for people, and details naming the
/// offending event by its index in the batch. How it goes on the wire (an HTTP status, a
/// `_rejected` announcement) is for the edge that sends it to decide.
public struct LaterbaseError: Error, CustomStringConvertible, Sendable {
    /// The contract's error codes.
    public enum Code: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case unauthorized
        case forbidden
        case unknownRoot = "unknown_root"
        case notFound = "not_found"
        case tooLarge = "too_large"
        case invalidEvent = "invalid_event"
        case gap
        case conflict
        case overloaded
        case storageFull = "storage_full"
        case unavailable
        case `internal`
        /// An HTTP method the path does not take (405, with `Allow`).
        case methodNotAllowed = "method_not_allowed"
        /// A `since` token this node did not issue, or from before a restore (410): the client
        /// starts again from its vv.
        case positionExpired = "position_expired"
        /// A caller holds as many of something as it may (live feeds per principal): 429 with
        /// Retry-After.
        case tooManyRequests = "too_many_requests"
    }

    public let code: Code
    public let message: String
    /// JSON objects, e.g. `{"index": 2, "field": "time", "reason": "..."}`.
    public let details: [JSON]

    public init(_ code: Code, _ message: String, details: [JSON] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    /// An error about event `index` of the batch.
    public static func event(_ code: Code, index: Int, _ message: String, extra: [(key: String, value: JSON)] = []) -> LaterbaseError {
        LaterbaseError(code, "event \(index): \(message)", details: [.object([("index", .integer(index)), ("reason", .string(message))] + extra)])
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The contract's error body: `{"error", "message", "details"}`.
    public var body: [UInt8] {
        JSON.object([("error", .string(code.rawValue)), ("message", .string(message)), ("details", .array(details))]).bytes
    }
}

extension LaterbaseError {
    /// How a storage failure reaches a caller: `storage_full` (507) when there is no room left,
    /// `unavailable` (503) when every reader slot is taken, `internal` (500) for anything else,
    /// such as a record that cannot be decoded.
    /// - Parameters:
    ///   - error: what LMDB reported.
    ///   - doing: what was being done, for the message.
    public init(storage error: LMDBError, _ doing: String) {
        if error.isStorageFull {
            self.init(.storageFull, "\(doing): the store is full (\(error)); nothing was stored")
        } else if error.isReadersFull {
            self.init(.unavailable, "\(doing): every reader slot is taken; retry shortly")
        } else {
            self.init(.internal, "\(doing): \(error)")
        }
    }
}
