import Foundation
import LMDB

/// The ceiling: raw LMDB puts of 200-byte values under sequential keys, 1000 per durable
/// transaction. Nothing Laterbase does to an event can be faster than this on the same disk.
enum LMDBCeiling {
    static func run(folder: String, events: Int) throws -> Double {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let env = try Environment(path: folder)
        let db = try env.openDatabase("raw")
        let value = [UInt8](repeating: 0x61, count: 200)
        var key = [UInt8](repeating: 0, count: 8)
        let start = ContinuousClock.now
        var n = 0
        while n < events {
            let txn = try env.beginWrite()
            for _ in 0..<1000 {
                var k = UInt64(n).bigEndian
                withUnsafeBytes(of: &k) { key = Array($0) }
                try txn.put(db, key, value, append: true)
                n += 1
            }
            try txn.commit()
        }
        return Double(n) / (ContinuousClock.now - start).seconds
    }
}

extension Duration {
    var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}
