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
    func sameBytes(as other: String) -> Bool {
        // The count is stored: most unequal names differ there, and no buffer is made for a
        // small string (withUTF8 would copy one out).
        utf8.count == other.utf8.count && utf8.elementsEqual(other.utf8)
    }
}
