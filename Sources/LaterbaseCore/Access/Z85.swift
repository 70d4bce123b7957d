/// Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 40 characters for 32 bytes.
public enum Z85 {
    private static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
    private static let values: [UInt8: UInt32] = Dictionary(uniqueKeysWithValues: alphabet.enumerated().map { ($1, UInt32($0)) })

    /// The text of `bytes`, whose count must be a multiple of 4.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 5 / 4)
        for i in stride(from: 0, to: bytes.count, by: 4) {
            var value = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
            var chunk = [UInt8](repeating: 0, count: 5)
            for j in (0..<5).reversed() {
                chunk[j] = alphabet[Int(value % 85)]
                value /= 85
            }
            out += chunk
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`, whose length must be a multiple of 5; nil if it is not Z85.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 5 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: chars.count, by: 5) {
            var value: UInt64 = 0
            for j in 0..<5 {
                guard let v = values[chars[i + j]] else { return nil }
                value = value * 85 + UInt64(v)
            }
            guard value <= UInt64(UInt32.max) else { return nil }
            out += [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
        }
        return out
    }

    /// Whether `text` is a CURVE key: 40 characters of Z85.
    public static func isKey(_ text: String) -> Bool { text.utf8.count == 40 && decode(text)?.count == 32 }
}
