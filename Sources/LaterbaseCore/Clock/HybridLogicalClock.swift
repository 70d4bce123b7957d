#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's hybrid logical clock (Kulkarni et al. 2014).
///
/// Never runs backwards: it starts from the persisted high-water mark, and follows the physical
/// clock only when that is ahead. Not thread-safe: the single writer owns it.
public struct HybridLogicalClock: Sendable {
    /// The largest reading issued or taken in so far; persist it with every commit.
    public private(set) var last: HLC
    private let physicalTime: @Sendable () -> UInt64

    /// - Parameters:
    ///   - highWaterMark: the largest reading persisted before, so a restart never goes back.
    ///   - physicalTime: milliseconds since the Unix epoch; the system clock by default.
    public init(highWaterMark: HLC = HLC(rawValue: 0), physicalTime: @escaping @Sendable () -> UInt64 = SystemClock.milliseconds) {
        self.last = highWaterMark
        self.physicalTime = physicalTime
    }

    /// A new reading for a local event (the send rule).
    public mutating func now() -> HLC {
        let pt = physicalTime()
        let l = last.milliseconds
        if pt > l {
            last = HLC(milliseconds: pt, counter: 0)
        } else {
            last = Self.advance(milliseconds: l, counter: UInt32(last.counter) + 1)
        }
        return last
    }

    /// Takes in a reading received from another replica (the receive rule). The caller has
    /// already refused readings too far ahead of the physical clock.
    public mutating func receive(_ remote: HLC) {
        let pt = physicalTime()
        let l0 = last.milliseconds, c0 = UInt32(last.counter)
        let lm = remote.milliseconds, cm = UInt32(remote.counter)
        let l = max(l0, lm, pt)
        let c: UInt32
        if l == l0 && l == lm {
            c = max(c0, cm) + 1
        } else if l == l0 {
            c = c0 + 1
        } else if l == lm {
            c = cm + 1
        } else {
            c = 0
        }
        last = Self.advance(milliseconds: l, counter: c)
    }

    /// A counter past 16 bits moves to the next millisecond.
    private static func advance(milliseconds: UInt64, counter: UInt32) -> HLC {
        if counter > UInt32(UInt16.max) { return HLC(milliseconds: milliseconds + 1, counter: 0) }
        return HLC(milliseconds: milliseconds, counter: UInt16(counter))
    }
}

/// The system's wall clock.
public enum SystemClock {
    /// Milliseconds since the Unix epoch.
    @Sendable public static func milliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
