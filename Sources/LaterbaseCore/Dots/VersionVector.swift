/// A version vector: origin → seq, meaning "every event of the root from that origin up to that
/// seq is held". An absent origin means 0. Wire form: `origin:seq` pairs joined by commas, sorted
/// by origin; the empty string is the empty vector.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    /// The non-zero entries.
    public private(set) var entries: [String: UInt64]

    public init(_ entries: [String: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    /// Why a vector's text was refused.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Parses the wire form. Refuses bad origins, seqs that are not decimal integers from 1 to
    /// 2^63-1, and an origin named twice.
    public init(parsing text: String) throws(ParseError) {
        var entries: [String: UInt64] = [:]
        if text.isEmpty {
            self.init()
            return
        }
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let colon = pair.lastIndex(of: ":") else {
                throw ParseError(description: "'\(pair)' is not origin:seq")
            }
            let origin = String(pair[..<colon])
            let seqText = pair[pair.index(after: colon)...]
            guard Names.isValidOrigin(origin) else { throw ParseError(description: "'\(origin)' is not a valid origin") }
            guard !seqText.isEmpty, seqText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seq = UInt64(seqText),
                (1...UInt64(Int64.max)).contains(seq)
            else {
                throw ParseError(description: "'\(seqText)' is not a seq from 1 to 2^63-1 for origin '\(origin)'")
            }
            guard entries[origin] == nil else { throw ParseError(description: "origin '\(origin)' appears twice") }
            entries[origin] = seq
        }
        self.init(entries)
    }

    /// The seq held for `origin` (0 when absent).
    public subscript(origin: String) -> UInt64 {
        get { entries[origin] ?? 0 }
        set { entries[origin] = newValue == 0 ? nil : newValue }
    }

    /// Whether the dot's event is covered.
    public func contains(_ dot: Dot) -> Bool { dot.seq <= self[dot.origin] }

    /// Entry-wise maximum.
    public func merging(_ other: VersionVector) -> VersionVector {
        VersionVector(entries.merging(other.entries, uniquingKeysWith: max))
    }

    /// How many events `other` covers that this vector does not, saturating at `Int.max`: a
    /// peer's vector is input, and seqs up to 2^63-1 are valid on the wire, so two of them
    /// would overflow a plain sum.
    public func count(missingFrom other: VersionVector) -> Int {
        other.entries.reduce(0) { $0.saturatingAdd(Int(clamping: $1.value - min($1.value, self[$1.key]))) }
    }

    /// Whether every entry is at most the other's.
    public func isCovered(by other: VersionVector) -> Bool {
        entries.allSatisfy { other[$0.key] >= $0.value }
    }

    /// The partial order of vectors: nil when concurrent.
    public func compare(_ other: VersionVector) -> Ordering? {
        let below = isCovered(by: other), above = other.isCovered(by: self)
        switch (below, above) {
        case (true, true): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (false, false): return nil
        }
    }

    /// How two vectors relate.
    public enum Ordering: Sendable { case before, equal, after }

    public var description: String {
        entries.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
    }
}
