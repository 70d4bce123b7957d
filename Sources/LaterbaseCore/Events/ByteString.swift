#if canImport(Glibc)
import Glibc
#endif

/// A string compared and hashed by its UTF-8 bytes, as LMDB compares keys.
///
/// Swift's `String` equality is canonical equivalence: the NFC and NFD forms of "café" are `==`
/// and hash alike, while their bytes (and so their keys) differ. Anything keyed by an aggregate
/// id or a JSON member name uses this, so it agrees with the store about what is the same.
public struct ByteString: Hashable, Sendable, CustomStringConvertible {
    public let string: String

    public init(_ string: String) { self.string = string }

    public static func == (a: ByteString, b: ByteString) -> Bool { a.string.sameBytes(as: b.string) }

    public func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { string }
}

extension String {
    /// Whether the two have the same UTF-8 bytes (not merely canonically equivalent).
    @inline(__always)
    public func sameBytes(as other: String) -> Bool {
        // The count is stored: most unequal names differ there. Native and small strings have
        // contiguous UTF-8 (a small one's is spilled to the stack), compared in one memcmp;
        // a bridged string, which has none, byte by byte.
        let n = utf8.count
        guard n == other.utf8.count else { return false }
        guard n > 0 else { return true }
        let same = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in memcmp(a.baseAddress!, b.baseAddress!, n) == 0 }
        }
        return (same ?? nil) ?? utf8.elementsEqual(other.utf8)
    }
}

extension Array where Element == UInt8 {
    /// Appends `s`'s UTF-8 bytes in one copy (appending a `String.UTF8View` goes byte by byte).
    @inline(__always)
    mutating func appendUTF8(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil {
            append(contentsOf: s.utf8)
        }
    }
}
