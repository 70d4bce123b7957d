import LaterbaseCore
import Testing

@Suite struct VersionVectorTests {
    @Test func parsesAndFormatsTheWireForm() throws {
        let vv = try VersionVector(parsing: "truck-7:40,hq-1:120")
        #expect(vv["hq-1"] == 120)
        #expect(vv["truck-7"] == 40)
        #expect(vv["absent"] == 0)
        #expect(vv.description == "hq-1:120,truck-7:40")  // sorted by origin
        #expect(try VersionVector(parsing: "").entries.isEmpty)
        #expect(VersionVector().description == "")
        #expect(try VersionVector(parsing: "a:9223372036854775807")["a"] == UInt64(Int64.max))
    }

    @Test(arguments: ["hq-1", "hq-1:", ":5", "hq-1:x", "hq-1:-1", "hq-1:1,", ",hq-1:1", "hq 1:1", "a:1,a:2", "-a:1", "a:99999999999999999999999",
        "a:0", "a:9223372036854775808", "a:18446744073709551615"])  // CONTRACT v2: a seq lies from 1 to 2^63-1
    func refusesMalformedText(_ text: String) {
        #expect(throws: VersionVector.ParseError.self) { try VersionVector(parsing: text) }
    }

    @Test func mergeIsEntryWiseMaximum() {
        let a = VersionVector(["x": 3, "y": 1]), b = VersionVector(["y": 4, "z": 2])
        #expect(a.merging(b) == VersionVector(["x": 3, "y": 4, "z": 2]))
        #expect(a.merging(b) == b.merging(a))
        #expect(a.merging(a) == a)
    }

    @Test func comparesAsAPartialOrder() {
        let a = VersionVector(["x": 3]), b = VersionVector(["x": 3, "y": 1]), c = VersionVector(["y": 2])
        #expect(a.compare(b) == .before)
        #expect(b.compare(a) == .after)
        #expect(a.compare(a) == .equal)
        #expect(a.compare(c) == nil)
        #expect(b.contains(Dot(origin: "y", seq: 1)))
        #expect(!b.contains(Dot(origin: "y", seq: 2)))
    }
}
