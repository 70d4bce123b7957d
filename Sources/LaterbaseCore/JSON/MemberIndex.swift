/// Finds an object's members by the bytes of their names (see ``ByteString``): a scan while the
/// object is small, with nothing allocated (most objects the store parses and merges have a
/// handful of members), and a hash table once it has more than ``scanLimit``, so an object of
/// many members costs O(n) to parse or merge, not O(n²).
struct MemberIndex {
    static let scanLimit = 16
    private var table: [ByteString: Int]? = nil

    /// Where `key` is among the first `count` members; `name(i)` is nil for a removed member.
    mutating func find(_ key: String, count: Int, name: (Int) -> String?) -> Int? {
        if table == nil && count > Self.scanLimit {
            var built = [ByteString: Int](minimumCapacity: 2 * count)
            for i in 0..<count { if let n = name(i) { built[ByteString(n)] = i } }
            table = built
        }
        if let table { return table[ByteString(key)] }
        for i in 0..<count where name(i)?.sameBytes(as: key) == true { return i }
        return nil
    }

    /// Records a member added at position `i`.
    mutating func insert(_ key: String, at i: Int) { table?[ByteString(key)] = i }

    /// Records a member removed.
    mutating func remove(_ key: String) { table?[ByteString(key)] = nil }
}
