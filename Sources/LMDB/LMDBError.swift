import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// An error returned by LMDB, with the operation that failed.
public struct LMDBError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The LMDB or errno code.
    public let code: Int32
    /// What we were doing, e.g. `mdb_put`.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The memory map is full: the store has reached its configured map size.
    public var isMapFull: Bool { code == MDB_MAP_FULL }

    /// No room left: the map is full, or the filesystem (ENOSPC) or a quota (EDQUOT) refused
    /// a write. The transaction wrote nothing; writes succeed again once there is room.
    public var isStorageFull: Bool { isMapFull || code == ENOSPC || code == EDQUOT }

    /// Every reader slot is taken (`MDB_READERS_FULL`): a transient overload, not a fault.
    public var isReadersFull: Bool { code == MDB_READERS_FULL }
    /// What was read does not decode (``corrupted(_:)``, or LMDB's own page check).
    public var isCorrupted: Bool { code == MDB_CORRUPTED }

    /// A stored value that cannot be decoded: reported as LMDB reports a corrupt page.
    /// - Parameter what: which record, for the log.
    public static func corrupted(_ what: String) -> LMDBError { LMDBError(code: MDB_CORRUPTED, operation: "decoding \(what)") }

    public var description: String {
        // Ours (``corrupted(_:)``): a record that does not decode, not a page LMDB found wrong.
        if code == MDB_CORRUPTED && operation.hasPrefix("decoding ") { return "\(operation): the store is damaged there" }
        let text = mdb_strerror(code).map { String(cString: $0) } ?? "unknown error"
        return "\(operation): \(text) (\(code))"
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if code != 0 { throw LMDBError(code: code, operation: operation()) }
}

/// `[UInt8].withUnsafeBytes` for a body with typed throws. Inlinable: called once per event
/// by the feed, it ran unspecialized from other modules and looked `Result`'s metadata up at
/// run time on every call.
@inlinable
public func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(LMDBError) -> R) throws(LMDBError) -> R {
    let result: Result<R, LMDBError> = bytes.withUnsafeBytes { pointer in
        Result { () throws(LMDBError) in try body(pointer) }
    }
    return try result.get()
}
