// laterbase-profile: the writer alone, for instruction counts under valgrind.
//
// A synchronous main (valgrind cannot run Swift's async main: it dies in libdispatch's
// sigsuspend), no HTTP, no network. It prepares every batch first (parse and schema check, on
// this thread), then hands them all to a `Writer` and waits until each is acknowledged, so
//
//   valgrind --tool=callgrind --toggle-collect='*StoreWriterC5write*' laterbase-profile
//
// counts the writer's instructions only: the transaction with everything it does per event,
// the commit included (LMDB's page writes; the kernel's side is not counted). Divide by the
// events written. `ops/profile-writer.sh` runs it and does the division.
//
// Usage: laterbase-profile [events=200000] [aggregates=10000] [root=notes|inventory] [page]
//
// With `page`, it then also reads the feed in pages of 10,000 and prepares each as a replica
// catching up would (parse, recorded events, schema): count that with
// --toggle-collect='*replicaPrepares*'.

import Blocking
import Foundation
import LaterbaseCore
import LaterbaseDemo

let arguments = CommandLine.arguments.dropFirst()
let events = arguments.first.flatMap { Int($0) } ?? 200_000
let aggregates = arguments.dropFirst().first.flatMap { Int($0) } ?? 10_000
let root = arguments.dropFirst(2).first ?? "notes"
let pages = arguments.dropFirst(3).first == "page"
let batchSize = 1000

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("laterbase-profile-\(getpid())").path
defer { try? FileManager.default.removeItem(atPath: folder) }
var options = EventStore.Options()
options.mapSize = 2 << 30  // valgrind cannot map the default 64 GiB
let store = try EventStore(directory: folder, roots: Demo.roots + [.jsonMerge("notes")], replicaID: "profile-1", options: options)
let batches = try SampleLoad.bodies(root, events: events, batchSize: batchSize, aggregates: aggregates).map {
    try store.prepare(root: root, body: $0)
}

/// Batches not yet answered, and failures.
let outcomes = ThreadLock((remaining: batches.count, failures: 0))
let writer = Writer(store: store)
writer.start()
let start = ContinuousClock.now
for batch in batches {
    writer.submitWaitingForRoom(batch) { result in
        outcomes.change { o in
            if case .failure = result { o.failures += 1 }
            o.remaining -= 1
        }
    }
}
let failures = outcomes.wait(until: { $0.remaining == 0 }) { o, _ in o.failures }
let elapsed = ContinuousClock.now - start
let (s, a) = elapsed.components
let seconds = Double(s) + Double(a) / 1e18
print("events \(batches.count * batchSize) aggregates \(aggregates) root \(root) failures \(failures) seconds \(String(format: "%.3f", seconds)) events/s \(Int(Double(batches.count * batchSize) / seconds))")

/// Prepares the feed's pages as a replica's catch-up does, after the fetch: the whole page parsed,
/// its events read as recorded events and checked against the schema.
@inline(never)
func replicaPrepares(_ body: [UInt8]) throws -> PreparedBatch {
    try body.withUnsafeBytes { b in try store.prepare(root: root, events: try EventInput.page(reading: b).events) }
}

/// With `page replica`: the pages are also written to a second store, as a replica's writer
/// takes them (count that writer as the difference of two runs, with and without).
let replicaWrites = arguments.dropFirst(4).first == "replica"
let replica = replicaWrites ? try EventStore(directory: folder + "-replica", roots: Demo.roots + [.jsonMerge("notes")], replicaID: "profile-2", options: options) : nil
defer { try? FileManager.default.removeItem(atPath: folder + "-replica") }
let replicaWriter = replica.map { Writer(store: $0) }
replicaWriter?.start()

if pages {
    var vv = VersionVector()
    var prepared = 0
    while true {
        let page = try store.feed(root: root, after: vv, limit: 10_000)
        guard !page.events.isEmpty else { break }
        let body = Array(#"{"events":["#.utf8) + page.events.dropLast() + Array(#"],"head":"\#(page.head)"}"#.utf8)
        let batch = try replicaPrepares(body)
        prepared += batch.events.count
        if let replicaWriter {
            let written = ThreadLock(false)
            replicaWriter.submit(batch) { result in
                if case .failure(let e) = result { print("replica write failed: \(e)") }
                written.change { $0 = true }
            }
            written.wait(until: { $0 }) { _, _ in }
        }
        vv = page.vv
        if !page.more { break }
    }
    print("replica pages: prepared \(prepared) events")
}
exit(failures == 0 ? 0 : 1)
