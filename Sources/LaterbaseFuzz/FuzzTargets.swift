import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseSync
import LMDB

/// What the fuzzer feeds: each target takes arbitrary bytes, must never trap, and checks a
/// property that holds for every input it accepts (a failed check traps on purpose, so the
/// fuzzer reports it as a crash).
enum FuzzTarget: String, CaseIterable {
    /// The JSON parser: whatever parses writes back to text that parses to the same value.
    case json
    /// A POST body: parse, read the events, check them against the demo's schemas.
    case event
    /// Query parameters and version vectors: a vector that parses prints back to itself.
    case query
    /// The stored record decoders, given any bytes as a key and a value.
    case record
    /// An ingest message: frames split at 0xFF 0x00, then the ingest path up to the write queue.
    case ingest
    /// A POST body: every event it accepts, recorded, goes through every transport's encoder and
    /// decoder (feed page, live-feed message, delta, push, NDJSON export) and comes out the same,
    /// accepted again (contract v3: what one node accepts, all take).
    case transport

    func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .json: Self.json(data)
        case .event: Self.event(data)
        case .query: Self.query(data)
        case .record: Self.record(data)
        case .ingest: Self.ingest(data)
        case .transport: Self.transport(data)
        }
    }

    /// A store with the demo's roots and a schema-less one, opened once in a temporary folder
    /// (prepare checks names and schemas; it writes nothing).
    static let store: EventStore = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("laterbase-fuzz-\(getpid())").path
        var options = EventStore.Options()
        options.mapSize = 64 << 20
        do {
            return try EventStore(directory: folder, roots: Demo.roots + [.jsonMerge("notes")], replicaID: "fuzz-1", options: options)
        } catch {
            fatalError("the fuzz store cannot open in \(folder): \(error)")  // set-up, not a finding
        }
    }()

    static func json(_ data: UnsafeRawBufferPointer) {
        guard let value = try? JSONParser.parse(data) else { return }
        let written = value.bytes
        guard let again = try? JSONParser.parse(written) else { fatalError("written JSON does not parse: \(written)") }
        guard again == value, again.bytes == written else { fatalError("JSON does not round-trip") }
        let merged = value.merged(with: value)
        _ = merged.merged(with: .object([("a", .null)])).bytes
    }

    static func event(_ data: UnsafeRawBufferPointer) {
        for root in ["notes", "inventory", "shipments"] {
            guard let batch = try? store.prepare(root: root, body: data) else { continue }
            for e in batch.events {
                if let t = e.time, !EventTime.range.contains(t) { fatalError("an event with time \(t) was accepted") }
                _ = EventTime.format(e.time ?? 0)
            }
        }
    }

    static func query(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        if let vv = try? ReadParameters.versionVector(text, name: "vv") {
            guard let again = try? VersionVector(parsing: vv.description), again == vv else { fatalError("vv does not round-trip: \(text)") }
        }
        if let ms = try? ReadParameters.time(text, name: "as_of") {
            let formatted = EventTime.format(ms)
            guard EventTime.parse(formatted) == ms else { fatalError("time does not round-trip: \(text)") }
        }
        _ = try? ReadParameters.integer(text, name: "limit", in: 0...10_000)
        _ = try? ReadParameters.aggregateID(text, name: "after")
        _ = EventID(text)
        _ = HLC(wire: text)
    }

    static func record(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        // The first byte says where the key ends and the value begins.
        let split = min(Int(data[0]), data.count - 1)
        let key = UnsafeRawBufferPointer(rebasing: data[1..<(1 + split)])
        let value = UnsafeRawBufferPointer(rebasing: data[(1 + split)...])
        _ = try? StoreIntegrity.checkEvent(key: key, value: value)
        _ = try? StoreIntegrity.checkSnapshot(value, id: "fuzz")
        _ = try? StoreIntegrity.checkPosition(value)
        _ = try? StoreIntegrity.checkPosition(key)
    }

    static func ingest(_ data: UnsafeRawBufferPointer) {
        var frames: [[UInt8]] = [[]]
        var i = 0
        while i < data.count {
            if data[i] == 0xFF, i + 1 < data.count, data[i + 1] == 0x00 {
                frames.append([])
                i += 2
                continue
            }
            frames[frames.count - 1].append(data[i])
            i += 1
        }
        let message: IngestMessage
        do { message = try IngestMessage(frames: frames) } catch {
            _ = Rejection.encode(root: error.root, error: error.error, named: Rejection.named(in: error.body))
            return
        }
        do {
            _ = try store.prepare(root: message.root, body: message.body)
        } catch {
            let announced = Rejection.encode(root: message.root, error: error, named: Rejection.named(in: message.body))
            guard (try? JSONParser.parse(announced)) != nil else { fatalError("a _rejected announcement is not JSON") }
        }
    }

    static func transport(_ data: UnsafeRawBufferPointer) {
        guard let batch = try? store.prepare(root: "notes", body: data) else { return }
        var random = SystemRandomNumberGenerator()
        let recorded = batch.events.enumerated().map { i, e in
            let hlc = HLC(milliseconds: 1_795_600_000_000, counter: UInt16(i))
            return RecordedEvent(
                id: e.id ?? EventID(high: random.next(), low: random.next()), aggregate: e.aggregate, type: e.type, version: e.version,
                data: e.dataBytes, time: e.time ?? Int64(hlc.milliseconds), hlc: hlc, origin: "fuzz-1", seq: UInt64(i + 1))
        }
        var events: [UInt8] = []
        for (i, e) in recorded.enumerated() {
            if i > 0 { events.append(UInt8(ascii: ",")) }
            e.appendJSON(to: &events)
        }
        let head = VersionVector(["fuzz-1": UInt64(recorded.count)])
        // What every transport carries, and how each reads it back.
        let page = Array(#"{"events":["#.utf8) + events + Array(#"],"vv":"\#(head)","head":"\#(head)","more":false}"#.utf8)
        let live = Array(#"{"events":["#.utf8) + events + Array(#"],"vv":"\#(head)","head":"\#(head)"}"#.utf8)
        let push = [UInt8(ascii: "[")] + events + [UInt8(ascii: "]")]
        // Deltas split at a small bound here, so that splitting is fuzzed too.
        let deltas = Delta.encode(events: recorded, previous: Position(epoch: 1, value: 7), maxBytes: 2048)
        func same(_ read: [EventInput], _ via: String) {
            guard read.count == recorded.count else { fatalError("\(via) read \(read.count) of \(recorded.count) events") }
            for (input, e) in zip(read, recorded) where !e.sameContent(as: input) { fatalError("\(via) changed \(e.dot)") }
            guard (try? store.prepare(root: "notes", events: read)) != nil else { fatalError("\(via): a node refuses what this one accepted") }
        }
        for (via, bodies) in [("a feed page", [page]), ("a live-feed message", [live]), ("a delta", deltas)] {
            var read: [EventInput] = []
            for body in bodies {
                guard !body.contains(UInt8(ascii: "\n")) else { fatalError("\(via) holds a raw newline (an SSE data line or NDJSON line would break)") }
                guard let events = try? body.withUnsafeBytes({ b in try EventInput.page(reading: b).events }) else { fatalError("\(via) does not read back") }
                guard body.count <= 2048 || events.count == 1 || via != "a delta" else { fatalError("a delta of \(body.count) bytes holds \(events.count) events") }
                read += events
            }
            same(read, via)
        }
        guard let pushed = try? push.withUnsafeBytes({ b in try EventInput.batch(reading: b, maxEvents: .max) }) else { fatalError("a push does not read back") }
        same(pushed, "a push")
        // NDJSON export: one event a line.
        for e in recorded {
            var line: [UInt8] = []
            e.appendJSON(to: &line)
            guard !line.contains(UInt8(ascii: "\n")),
                  let read = try? line.withUnsafeBytes({ b in try EventInput.batch(reading: b, maxEvents: 1) }), read.count == 1, e.sameContent(as: read[0])
            else { fatalError("an NDJSON line of \(e.dot) does not read back") }
        }
    }
}
