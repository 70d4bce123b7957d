import LaterbaseCore
import Synchronization
import Testing

/// A settable wall clock.
final class FakeClock: Sendable {
    private let now: Mutex<UInt64>
    init(_ ms: UInt64) { now = Mutex(ms) }
    func set(_ ms: UInt64) { now.withLock { $0 = ms } }
    var read: @Sendable () -> UInt64 { { [self] in now.withLock { $0 } } }
}

@Suite struct HybridLogicalClockTests {
    @Test func followsThePhysicalClockWhenItIsAhead() {
        let wall = FakeClock(1000)
        var clock = HybridLogicalClock(physicalTime: wall.read)
        #expect(clock.now() == HLC(milliseconds: 1000, counter: 0))
        wall.set(1005)
        #expect(clock.now() == HLC(milliseconds: 1005, counter: 0))
    }

    @Test func countsWhenThePhysicalClockStandsStillOrStepsBack() {
        let wall = FakeClock(1000)
        var clock = HybridLogicalClock(physicalTime: wall.read)
        let a = clock.now()
        let b = clock.now()
        wall.set(900)  // the wall clock steps back
        let c = clock.now()
        #expect(b == HLC(milliseconds: 1000, counter: 1))
        #expect(c == HLC(milliseconds: 1000, counter: 2))
        #expect(a < b && b < c)
    }

    @Test func counterOverflowMovesToTheNextMillisecond() {
        let wall = FakeClock(1000)
        var clock = HybridLogicalClock(highWaterMark: HLC(milliseconds: 1000, counter: .max), physicalTime: wall.read)
        #expect(clock.now() == HLC(milliseconds: 1001, counter: 0))
    }

    @Test func receiveRule() {
        let wall = FakeClock(1000)
        var clock = HybridLogicalClock(highWaterMark: HLC(milliseconds: 1000, counter: 4), physicalTime: wall.read)
        // l == l' == l_m: max(c, c_m) + 1
        clock.receive(HLC(milliseconds: 1000, counter: 9))
        #expect(clock.last == HLC(milliseconds: 1000, counter: 10))
        // the remote is ahead: c_m + 1
        clock.receive(HLC(milliseconds: 1003, counter: 7))
        #expect(clock.last == HLC(milliseconds: 1003, counter: 8))
        // the remote is behind, local ahead of physical: c + 1
        clock.receive(HLC(milliseconds: 999, counter: 50))
        #expect(clock.last == HLC(milliseconds: 1003, counter: 9))
        // physical time is ahead of both: counter resets
        wall.set(2000)
        clock.receive(HLC(milliseconds: 1500, counter: 3))
        #expect(clock.last == HLC(milliseconds: 2000, counter: 0))
    }

    @Test func wireFormIsSixteenLowercaseHexDigits() {
        let h = HLC(milliseconds: 0x1934f5a2b, counter: 3)
        #expect(h.description == "0000001934f5a2b0003".suffix(16))
        #expect(h.description.count == 16)
        #expect(HLC(wire: h.description) == h)
        #expect(HLC(wire: "0001934F5A2B0003") == nil)  // uppercase is not the wire form
        #expect(HLC(wire: "123") == nil)
    }

    @Test func persistedHighWaterMarkSurvivesARestartAndAClockStepBack() async throws {
        let wall = FakeClock(1_800_000_000_000)
        let folder = TestNode.temporaryFolder()
        var node: TestNode? = try TestNode(replica: "a", folder: folder, durable: true, physicalTime: wall.read)
        let first = try await node!.write("notes", #"{"aggregate":"n","type":"t","data":{}}"#)
        await node!.close(removing: false)
        node = nil

        wall.set(1_700_000_000_000)  // the machine comes back with its clock a long way behind
        node = try TestNode(replica: "a", folder: folder, durable: true, physicalTime: wall.read)
        let second = try await node!.write("notes", #"{"aggregate":"n","type":"t","data":{}}"#)
        #expect(second.events[0].hlc > first.events[0].hlc)
        #expect(second.events[0].seq == 2)
        await node!.close()
    }
}
