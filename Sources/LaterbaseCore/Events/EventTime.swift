/// Valid time: milliseconds since the Unix epoch, with RFC 3339 parsing and formatting.
public enum EventTime {
    /// The times the store takes: `0000-01-01T00:00:00.000Z` to `9999-12-31T23:59:59.999Z`,
    /// the years RFC 3339 can write with four digits.
    public static let range: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999

    /// Formats as RFC 3339 UTC with milliseconds: `2026-11-20T10:00:00.000Z`.
    public static func format(_ ms: Int64) -> String {
        var out: [UInt8] = []
        append(ms, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the RFC 3339 form (24 bytes). Total: a value outside ``range``, which the store
    /// never holds, is written as the nearest end of it rather than trapping.
    public static func append(_ ms: Int64, to out: inout [UInt8]) {
        let ms = min(max(ms, range.lowerBound), range.upperBound)
        let days = floorDiv(ms, 86_400_000)
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        digits(y, 4, &out); out.append(0x2D)
        digits(m, 2, &out); out.append(0x2D)
        digits(d, 2, &out); out.append(UInt8(ascii: "T"))
        digits(msOfDay / 3_600_000, 2, &out); out.append(0x3A)
        digits(msOfDay / 60_000 % 60, 2, &out); out.append(0x3A)
        digits(msOfDay / 1000 % 60, 2, &out); out.append(0x2E)
        digits(msOfDay % 1000, 3, &out); out.append(UInt8(ascii: "Z"))
    }

    /// Parses an RFC 3339 timestamp (`T` or space, any fraction, `Z` or an offset) to milliseconds.
    /// Fractions beyond milliseconds are truncated. - Returns: nil when malformed.
    public static func parse(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// ``parse(_:)`` over UTF-8 bytes.
    static func parse(_ u: UnsafeRawBufferPointer) -> Int64? {
        guard u.count >= 20 else { return nil }
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= u.count else { return nil }
            var v: Int64 = 0
            for i in from..<from + count {
                guard u[i] >= 0x30, u[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(u[i] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), u[4] == 0x2D, let mo = num(5, 2), u[7] == 0x2D, let d = num(8, 2),
            u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t") || u[10] == 0x20,
            let h = num(11, 2), u[13] == 0x3A, let mi = num(14, 2), u[16] == 0x3A, let s = num(17, 2)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h <= 23, mi <= 59, s <= 60 else { return nil }
        var i = 19
        var fractionMs: Int64 = 0
        if i < u.count, u[i] == 0x2E {
            i += 1
            let start = i
            while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                if i - start < 3 { fractionMs = fractionMs * 10 + Int64(u[i] - 0x30) }
                i += 1
            }
            guard i > start else { return nil }
            for _ in 0..<max(0, 3 - (i - start)) { fractionMs *= 10 }
        }
        guard i < u.count else { return nil }
        var offsetMinutes: Int64 = 0
        if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
            i += 1
        } else if u[i] == 0x2B || u[i] == 0x2D {
            let sign: Int64 = u[i] == 0x2B ? 1 : -1
            guard let oh = num(i + 1, 2), i + 3 < u.count, u[i + 3] == 0x3A, let om = num(i + 4, 2), oh <= 23, om <= 59 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
            i += 6
        } else {
            return nil
        }
        guard i == u.count else { return nil }
        let days = days(fromCivil: y, mo, d)
        let seconds = days * 86_400 + h * 3600 + mi * 60 + min(s, 59) - offsetMinutes * 60
        return seconds * 1000 + fractionMs
    }

    @inline(__always)
    private static func digits(_ v: Int64, _ width: Int, _ out: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = v
        while divisor > 0 {
            out.append(UInt8(0x30 + (rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's civil-from-days and days-from-civil.
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
