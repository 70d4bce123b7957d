import Foundation

/// A plain TCP connection to loopback, driven byte by byte: what an attacker, a half-finished
/// client or an eager one sends, and whether the server answered or closed.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; `receiveBuffer` shrinks the socket's receive buffer first;
    /// a send blocked for `sendTimeout` (the server reads nothing) gives up.
    init(port: Int, receiveBuffer: Int32? = nil, sendTimeout: Duration = .seconds(20)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var limit = timeval(tv_sec: Int(sendTimeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// A connection accepted by a ``RawListener``.
    init(descriptor: Int32) {
        fd = descriptor
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends all of `bytes`; false if the server closed the connection first, or read nothing
    /// for the send timeout.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// What the server sent until it closed the connection or `seconds` passed, and whether it closed.
    func readUntilClosed(within seconds: Double) -> (bytes: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard Glibc.poll(&poll, 1, ms) == 1 else { continue }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return (out, true) }
            if n > 0 { out += buffer[..<n] }
        }
        return (out, false)
    }

    /// Exactly `count` bytes (blocking until they come), or nil if the server closed first.
    func read(exactly count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { Glibc.read(self.fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return out
    }

    /// The status line of the response (blocking until it comes).
    func statusLine() -> String {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        return String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether the server closed the connection within `seconds` (whatever it sent first).
    func closedByServer(within seconds: Double) -> Bool { readUntilClosed(within: seconds).closed }
}

/// Raises this process's open-file limit as far as the hard limit allows; returns the limit now.
@discardableResult
func raiseOpenFileLimit(to wanted: Int) -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < rlim_t(wanted) {
        limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(limit.rlim_cur)
}

/// Runs blocking socket work on a thread of its own, off Swift's cooperative pool (two threads
/// on a two-core machine, which the in-process server's handlers need too).
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

/// A TCP listener on loopback for a server the test plays (a peer's socket, say).
final class RawListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// The next connection, or nil if none came within `seconds`.
    func accept(within seconds: Int32) -> RawConnection? {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, seconds * 1000) == 1 else { return nil }
        let c = Glibc.accept(fd, nil, nil)
        return c >= 0 ? RawConnection(descriptor: c) : nil
    }
}

/// ZMTP 3.0 (RFC 23) as a raw peer speaks it, NULL mechanism: for tests that play a ZeroMQ socket
/// byte by byte.
enum ZMTP {
    /// The 64-byte greeting.
    static let greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0] + Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0]
        + [UInt8](repeating: 0, count: 31)

    /// The READY command of a socket of `type` ("PUSH", "PUB").
    static func ready(_ type: String) -> [UInt8] {
        let body = [5] + Array("READY".utf8) + [11] + Array("Socket-Type".utf8) + withUnsafeBytes(of: UInt32(type.utf8.count).bigEndian, Array.init) + Array(type.utf8)
        return [0x04, UInt8(body.count)] + body
    }

    /// A frame of `size` bytes marked "more" (flags MORE | LONG).
    static func moreFrame(size: Int) -> [UInt8] {
        [0x03] + withUnsafeBytes(of: UInt64(size).bigEndian, Array.init) + [UInt8](repeating: 0x78, count: size)
    }

    /// Sends `frame` until the peer stops taking it or `limit` bytes went; the bytes sent.
    static func flood(_ connection: RawConnection, with frame: [UInt8], upTo limit: Int) async -> Int {
        await blocking {
            var sent = 0
            while sent < limit, connection.send(frame) { sent += frame.count }
            return sent
        }
    }
}
