import LaterbaseCore
import LaterbaseDemo
import Testing

@Suite struct JSONTests {
    @Test func roundTripsCompactly() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null],"b":"x\"y\\z\n\u0001é😀","c":{}}"#
        let parsed = try JSONParser.parse(Array(text.utf8))
        #expect(String(decoding: parsed.bytes, as: UTF8.self) == #"{"a":[1,-2.5e3,true,false,null],"b":"x\"y\\z\n\u0001é😀","c":{}}"#)
        #expect(try JSONParser.parse(Array(#" { "k" : "\ud83d\ude00" } "#.utf8))["k"] == .string("😀"))
    }

    /// Duplicate names (the last wins, in the first one's place) and merges, below and above the
    /// size at which member lookup turns from a scan into a hash table; names compare as bytes.
    @Test(arguments: [3, 16, 17, 5_000])
    func membersAreFoundByTheirBytesAtAnySize(_ n: Int) throws {
        let names = (0..<n).map { "k\($0)" }
        let text = "{" + names.map { #""\#($0)":1"# }.joined(separator: ",") + #","k0":2,"caf\#u{E9}":3,"cafe\#u{301}":4}"#
        guard case .object(let members) = try JSONParser.parse(Array(text.utf8)) else { Issue.record("not an object"); return }
        #expect(members.count == n + 2)
        #expect(members[0].key == "k0" && members[0].value == .integer(2))
        #expect(members.suffix(2).map { Array($0.key.utf8) } == [Array("caf\u{E9}".utf8), Array("cafe\u{301}".utf8)])

        let state = JSON.object(members)
        let patch = JSON.object([("k0", .null), ("cafe\u{301}", .integer(5)), ("new", .integer(6))])
        guard case .object(let merged) = state.merged(with: patch) else { Issue.record("not an object"); return }
        #expect(merged.count == n + 2)
        #expect(!merged.contains { $0.key.utf8.elementsEqual("k0".utf8) })
        #expect(merged.first { $0.key.utf8.elementsEqual("caf\u{E9}".utf8) }?.value == .integer(3))
        #expect(merged.first { $0.key.utf8.elementsEqual("cafe\u{301}".utf8) }?.value == .integer(5))
        #expect(merged.last?.key == "new")
    }

    /// An event's `data` is kept as the bytes it came in when they are already what the writer
    /// writes, and written again otherwise: either way the stored bytes must be the writer's. Random
    /// values, written with random whitespace, escapes a writer would not use, and repeated names.
    @Test func batchDataIsStoredAsTheWriterWritesIt() throws {
        var rng = SeededGenerator(seed: 7)
        func pad() -> String { rng.next() % 4 == 0 ? [" ", "\n", "\t ", "\r\n"][Int(rng.next() % 4)] : "" }
        func string() -> (text: String, value: String) {
            var text = "\"", value = ""
            for _ in 0..<(rng.next() % 6) {
                switch rng.next() % 8 {
                case 0: text += "\\/"; value += "/"
                case 1: text += "\\u00e9"; value += "é"
                case 2: text += "é"; value += "é"
                case 3: text += "\\\""; value += "\""
                case 4: text += "\\n"; value += "\n"
                case 5: text += "\\u0041"; value += "A"
                default: let c = "abcxyz"[Int(rng.next() % 6)]; text += c; value += c
                }
            }
            return (text + "\"", value)
        }
        func value(_ depth: Int) -> String {
            switch rng.next() % (depth > 2 ? 4 : 6) {
            case 0: return ["1", "-2.5e3", "0", "12"][Int(rng.next() % 4)]
            case 1: return ["true", "false", "null"][Int(rng.next() % 3)]
            case 2, 3: return string().text
            case 4: return "[" + (0..<(rng.next() % 3)).map { _ in pad() + value(depth + 1) + pad() }.joined(separator: ",") + "]"
            default:
                var names = (0..<(rng.next() % 4)).map { _ in string().text }
                if !names.isEmpty, rng.next() % 3 == 0 { names.append(names[0]) }  // a repeated name: the last wins
                return "{" + names.map { pad() + $0 + pad() + ":" + pad() + value(depth + 1) + pad() }.joined(separator: ",") + "}"
            }
        }
        var checked = 0
        for _ in 0..<300 {
            let data = (0..<(1 + rng.next() % 4)).map { _ in value(0) }
            let events = data.map { d in pad() + "{" + pad() + #""aggregate":"a","# + pad() + #""data":"# + pad() + d + pad() + #","type":"t"}"# }
            let body = Array((rng.next() % 2 == 0 && events.count == 1 ? events[0] : "[" + events.joined(separator: ",") + "]").utf8)
            let inputs = try body.withUnsafeBytes { b in try EventInput.batch(reading: b, maxEvents: 100) }
            // The same events as a feed page's or a delta's `events`, beside a decoy array of
            // objects and, sometimes, a repeated `events` member (the last wins).
            let decoy = #"{"data":{"decoy":1},"aggregate":"x","type":"t"}"#
            let repeated = rng.next() % 3 == 0 ? #""events":[\#(decoy),\#(decoy)],"# : ""
            let page = Array(#"{"x":[\#(decoy)],\#(repeated)"events":["# .utf8) + Array(events.joined(separator: ",").utf8) + Array(#"],"head":"a:1","more":false}"#.utf8)
            let fromPage = try page.withUnsafeBytes { b in try EventInput.page(reading: b).events }
            #expect(fromPage.map(\.dataBytes) == inputs.map(\.dataBytes))
            #expect(inputs.count == data.count)
            for (input, d) in zip(inputs, data) {
                let expected = try JSONParser.parse(Array(d.utf8)).bytes
                #expect(input.dataBytes == expected, "data \(d)")
                #expect(input.data == (try JSONParser.parse(expected)))
                checked += 1
            }
        }
        #expect(checked >= 300)
    }

    /// The fast event reader (``JSONParser/readEvents(_:maxEvents:)``) must read what the
    /// general path reads, the same way, and give up on anything else: random events whose members
    /// are each plain, unusual (escapes, whitespace, exponents, nulls) or wrong.
    @Test func theFastEventReaderAgreesWithTheGeneralPath() throws {
        var rng = SeededGenerator(seed: 3)
        func pick(_ options: [String]) -> String { options[Int(rng.next() % UInt64(options.count))] }
        func member() -> String? {
            switch rng.next() % 11 {
            case 0: return #""id":"# + pick([#""0195f3a2-7b1c-7def-8abc-0123456789ab""#, #""0195F3A2-7B1C-7DEF-8ABC-0123456789AB""#, "null", #""not-an-id""#, #""0195f3a2-7b1c-7def-8abc-0123456789ab""#, "7"])
            case 1: return #""version":"# + pick(["1", "2", "65535", "0", "65536", "-1", "1.0", "1e0", "null", #""1""#])
            case 2: return #""time":"# + pick([#""2026-11-20T10:30:00.000Z""#, #""2026-11-20T10:30:00+13:00""#, "1764000000000", "-5", "null", #""yesterday""#, "1.5", "99999999999999999999", #""2026-11-20T10:30:00.000Z""#])
            case 3: return #""data":"# + pick([#"{"qty":5}"#, #"{ "qty" : 5 }"#, #"{"s":"a"b"}"#, #"{"s":"é"}"#, "[1,2]", "null", "7", #"{"a":1,"a":2}"#])
            case 4: return #""origin":"# + pick([#""hq-2""#, #""bad origin""#, "null", "3"])
            case 5: return #""seq":"# + pick(["1", "42", "0", "-3", "1.0", "null"])
            case 6: return #""hlc":"# + pick([#""0195f3a27b1c0001""#, #""0195F3A27B1C0001""#, #""01""#, "null"])
            case 7: return pick([#""extra":1"#, #""aggregate":"dup""#, #""type":"dup""#])
            case 8, 9: return #""origin":"hq-2","seq":"# + pick(["3", "1"]) + #","hlc":"# + pick([#""0195f3a27b1c0001""#, #""ffffffffffff0001""#])
            default: return nil
            }
        }
        var fast = 0, general = 0
        for _ in 0..<6000 {
            let events = (0..<(1 + rng.next() % 2)).map { _ -> String in
                var members = [#""aggregate":"# + pick([#""SKU-1@AKL""#, #""café""#, #""""#, "5"]), #""type":"# + pick([#""stock.received""#, #""9bad""#, #""t""#])]
                for _ in 0..<(rng.next() % 3) { if let m = member() { members.append(m) } }
                members.shuffle(using: &rng)
                return "{" + members.joined(separator: rng.next() % 4 == 0 ? " , " : ",") + "}"
            }
            let body = Array((events.count == 1 && rng.next() % 2 == 0 ? events[0] : "[" + events.joined(separator: ",") + "]").utf8)
            try body.withUnsafeBytes { b in
                let expected = Result { () throws -> [EventInput] in try EventInput.batch(from: try JSONParser.parse(b), maxEvents: 100) }
                guard let read = JSONParser.readEvents(b, maxEvents: 100) else {
                    general += 1
                    return
                }
                fast += 1
                let want = try #require(try? expected.get(), "the fast reader took \(String(decoding: body, as: UTF8.self))")
                #expect(read.count == want.count)
                for (r, w) in zip(read, want) {
                    #expect(r.id == w.id && r.aggregate.sameBytes(as: w.aggregate) && r.type == w.type && r.version == w.version)
                    #expect(r.data == w.data && r.dataBytes == w.dataBytes && r.time == w.time && r.recorded == w.recorded, "\(String(decoding: body, as: UTF8.self))")
                }
                // As a feed page's events, the same.
                let page = Array(#"{"head":"hq-2:1","events":"#.utf8) + (b.first == UInt8(ascii: "[") ? Array(b) : Array("[".utf8) + Array(b) + Array("]".utf8)) + Array(#","more":false}"#.utf8)
                let fromPage = page.withUnsafeBytes { JSONParser.readPage($0) }
                #expect(fromPage?.events.map(\.dataBytes) == read.map(\.dataBytes))
                #expect(fromPage?.rest["head"] == .string("hq-2:1") && fromPage?.rest["more"] == .bool(false))
            }
        }
        #expect(fast > 400 && general > 400, "fast \(fast), general \(general)")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "01", "1.", "\"\u{01}\"", "tru", "{} x", "\"\\ud800\"", "[1 2]", "nan"])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    /// The examples of RFC 7386, appendix A.
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, "null", "null"),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func mergePatch(_ target: String, _ patch: String, _ expected: String) throws {
        let t = try JSONParser.parse(Array(target.utf8)), p = try JSONParser.parse(Array(patch.utf8))
        #expect(String(decoding: t.merged(with: p).bytes, as: UTF8.self) == expected)
    }
}

@Suite struct EventTimeTests {
    @Test func formatsRFC3339UTCWithMilliseconds() {
        #expect(EventTime.format(0) == "1970-01-01T00:00:00.000Z")
        #expect(EventTime.format(1_795_687_200_123) == "2026-11-26T10:00:00.123Z")
        #expect(EventTime.format(-1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func parsesAnyRFC3339Timestamp() {
        #expect(EventTime.parse("2026-11-26T10:00:00.123Z") == 1_795_687_200_123)
        #expect(EventTime.parse("2026-11-26T10:00:00Z") == 1_795_687_200_000)
        #expect(EventTime.parse("2026-11-26T23:00:00.5+13:00") == 1_795_687_200_500)
        #expect(EventTime.parse("2026-11-26T10:00:00.123456789Z") == 1_795_687_200_123)
        for bad in ["2026-11-26", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-26T10:00:00", "yesterday", "2026-11-26T10:00:00+1300"] {
            #expect(EventTime.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct NamesTests {
    @Test func followTheContract() {
        #expect(Names.isValidRoot("shipments") && Names.isValidRoot("a_b-1") && !Names.isValidRoot("Ships") && !Names.isValidRoot("1a") && !Names.isValidRoot(String(repeating: "a", count: 65)))
        #expect(Names.isValidOrigin("hq-1") && Names.isValidOrigin("7.truck_2") && !Names.isValidOrigin("-x") && !Names.isValidOrigin("a:b"))
        #expect(Names.isValidEventType("shipment.departed") && !Names.isValidEventType("1x") && !Names.isValidEventType("a b"))
        #expect(Names.isValidAggregateID("SKU-1@AKL") && Names.isValidAggregateID("ü/ß") && !Names.isValidAggregateID("") && !Names.isValidAggregateID("a\u{7}b") && !Names.isValidAggregateID(String(repeating: "x", count: 257)))
    }
}

extension String {
    fileprivate subscript(i: Int) -> String { String(self[index(startIndex, offsetBy: i)]) }
}
