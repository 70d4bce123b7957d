/// Writes a binary layout (keys, event records, `aggs` records) straight into an array's memory:
/// the caller works out the length first, the storage is sized once (and reused when the array
/// is a scratch buffer), and each field is stored in place. The appends this replaces were a
/// non-inlined generic call each, about 90 instructions, a dozen to a record.
///
/// Bounds are asserted in debug builds (the tests'); a layout's length and its writes come from
/// the same fields, side by side.
struct ByteWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var offset = 0

    fileprivate init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always)
    mutating func u64(_ v: UInt64) {
        assert(offset + 8 <= capacity, "a layout written past its length")
        base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }

    @inline(__always)
    mutating func u16(_ v: Int) {
        u8(UInt8(truncatingIfNeeded: v >> 8))
        u8(UInt8(truncatingIfNeeded: v))
    }

    @inline(__always)
    mutating func u8(_ v: UInt8) {
        assert(offset < capacity, "a layout written past its length")
        base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    @inline(__always)
    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        guard let from = b.baseAddress, b.count > 0 else { return }
        assert(offset + b.count <= capacity, "a layout written past its length")
        (base + offset).copyMemory(from: from, byteCount: b.count)
        offset += b.count
    }

    @inline(__always)
    mutating func bytes(_ b: [UInt8]) {
        b.withUnsafeBytes { bytes($0) }
    }

    /// `digits` lowercase hex digits of `v`'s low bits, most significant first.
    @inline(__always)
    mutating func hex(_ v: UInt64, digits: Int) {
        assert(offset + digits <= capacity, "a layout written past its length")
        for i in 0..<digits {
            base.storeBytes(of: Hex.digit(UInt8((v >> UInt64(4 * (digits - 1 - i))) & 0xF)), toByteOffset: offset + i, as: UInt8.self)
        }
        offset += digits
    }

    mutating func utf8(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ bytes(UnsafeRawBufferPointer($0)) }) == nil {
            for c in s.utf8 { u8(c) }
        }
    }
}

extension Array where Element == UInt8 {
    /// `count` bytes, all written by `body`.
    static func written(count: Int, _ body: (inout ByteWriter) -> Void) -> [UInt8] {
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var w = ByteWriter(base: UnsafeMutableRawPointer(buffer.baseAddress!), capacity: count)
            body(&w)
            assert(w.offset == count, "a layout of \(count) bytes written as \(w.offset)")
            initialized = count
        }
    }

    /// Appends `count` bytes, all written by `body` (ids and hlcs in JSON: one append, not one
    /// a digit). Written in a temporary buffer first: growing the array with zeros and writing
    /// into it raised a flood test's peak heap by a third (64-66 MiB to 84-134 MiB).
    mutating func append(count: Int, _ body: (inout ByteWriter) -> Void) {
        guard count > 0 else { return }
        withUnsafeTemporaryAllocation(byteCount: count, alignment: 1) { b in
            var w = ByteWriter(base: b.baseAddress!, capacity: count)
            body(&w)
            assert(w.offset == count, "\(count) bytes appended as \(w.offset)")
            append(contentsOf: UnsafeRawBufferPointer(b))
        }
    }

    /// Appends a literal's bytes (through `String.UTF8View` each cost a generic copy).
    @inline(__always)
    mutating func append(literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Replaces the bytes with `count` bytes, all written by `body`, reusing the storage.
    mutating func rewrite(count: Int, _ body: (inout ByteWriter) -> Void) {
        if self.count > count {
            removeLast(self.count - count)
        } else if self.count < count {
            append(contentsOf: repeatElement(0, count: count - self.count))
        }
        guard count > 0 else { return }
        withUnsafeMutableBytes { b in
            var w = ByteWriter(base: b.baseAddress!, capacity: count)
            body(&w)
            assert(w.offset == count, "a layout of \(count) bytes written as \(w.offset)")
        }
    }
}
