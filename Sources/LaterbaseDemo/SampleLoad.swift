/// The events the benchmark and the writer profile write: 200-byte `item.scanned` events on
/// schema-less roots, `stock.received` on `inventory`, spread over a number of aggregates.
public enum SampleLoad {
    /// Event `i` for `root`, on one of `aggregates` aggregates.
    public static func event(_ root: String, _ i: Int, aggregates: Int = 10_000) -> String {
        if root == "inventory" {
            return #"{"aggregate":"SKU-\#(i % aggregates)@AKL","type":"stock.received","data":{"qty":\#(i % 50 + 1)}}"#
        }
        let body = #"{"aggregate":"A-\#(i % aggregates)","type":"item.scanned","data":{"sku":"SKU-\#(i % 977)","site":"AKL","bin":"B-\#(i % 40)","qty":\#(i % 50),"note":""#
        let pad = max(0, 200 - body.utf8.count - 3)
        return body + String(repeating: "x", count: pad) + #""}}"#
    }

    /// `events` as JSON array bodies of `batchSize` events each.
    public static func bodies(_ root: String, events: Int, batchSize: Int, aggregates: Int = 10_000) -> [[UInt8]] {
        (0..<(events / batchSize)).map { b in
            Array(("[" + (0..<batchSize).map { event(root, b * batchSize + $0, aggregates: aggregates) }.joined(separator: ",") + "]").utf8)
        }
    }
}
