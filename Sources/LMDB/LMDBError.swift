import CLMDB

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

    public var description: String {
        let text = mdb_strerror(code).map { String(cString: $0) } ?? "unknown error"
        return "\(operation): \(text) (\(code))"
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if code != 0 { throw LMDBError(code: code, operation: operation()) }
}

/// `[UInt8].withUnsafeBytes` for a body with typed throws.
@inline(__always)
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(LMDBError) -> R) throws(LMDBError) -> R {
    let result: Result<R, LMDBError> = bytes.withUnsafeBytes { pointer in
        Result { () throws(LMDBError) in try body(pointer) }
    }
    return try result.get()
}
