import LMDB

/// A refusal the wire contract names: its code, a message for people, and details naming the
/// offending event by its index in the batch. How it goes on the wire (an HTTP status, a
/// `_rejected` announcement) is for the edge that sends it to decide.
public struct LaterbaseError: Error, CustomStringConvertible, Sendable {
    /// A refusal's code: the contract's (`bad_request`, `gap`, …, each a static member) or an
    /// application's own, made from its wire name (as swift-service-lifecycle's
    /// `ServiceGroupError.Code` is a struct, not a closed enum, so a code can be added without
    /// breaking anyone's exhaustive `switch`):
    ///
    /// ```swift
    /// extension LaterbaseError.Code { static let outOfStock = Self("out_of_stock") }
    /// ```
    ///
    /// An HTTP edge answers a code it does not know with 400.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        /// The wire name: the `error` of the contract's body, the `reason` of a metric.
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let badRequest = Self("bad_request")
        public static let unauthorized = Self("unauthorized")
        public static let forbidden = Self("forbidden")
        public static let unknownRoot = Self("unknown_root")
        public static let notFound = Self("not_found")
        public static let tooLarge = Self("too_large")
        public static let invalidEvent = Self("invalid_event")
        public static let gap = Self("gap")
        public static let conflict = Self("conflict")
        public static let overloaded = Self("overloaded")
        public static let storageFull = Self("storage_full")
        public static let unavailable = Self("unavailable")
        public static let `internal` = Self("internal")
        /// An HTTP method the path does not take (405, with `Allow`).
        public static let methodNotAllowed = Self("method_not_allowed")
        /// A `since` token this node did not issue, or from before a restore (410): the client
        /// starts again from its vv.
        public static let positionExpired = Self("position_expired")
        /// A caller holds as many of something as it may (live feeds per principal): 429 with
        /// Retry-After.
        public static let tooManyRequests = Self("too_many_requests")

        /// The contract's codes (CONTRACT.md), each counted on `/metrics` from the start.
        public static let contract: [Self] = [
            .badRequest, .unauthorized, .forbidden, .unknownRoot, .notFound, .tooLarge, .invalidEvent, .gap, .conflict, .overloaded,
            .storageFull, .unavailable, .internal, .methodNotAllowed, .positionExpired, .tooManyRequests,
        ]
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
