import Foundation
import Synchronization

/// A TCP proxy on loopback that counts the bytes it carries both ways: put between a peer link
/// and its peer's HTTP port, it says what an idle link costs on the wire (request lines,
/// headers and bodies, as sent).
final class CountingProxy: Sendable {
    let port: Int
    private let listener: Int32
    private let bytes = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    init(to targetPort: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else { throw BenchError("bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in accept(to: targetPort) }
        thread.start()
    }

    /// Bytes carried both ways since the last reset.
    var carried: Int { bytes.load(ordering: .relaxed) }
    func reset() { bytes.store(0, ordering: .relaxed) }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func accept(to targetPort: Int) {
        while !stopped.load(ordering: .relaxed) {
            let client = Glibc.accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(targetPort).bigEndian)
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard connected == 0 else {
                close(client)
                close(upstream)
                continue
            }
            let done = Atomic<Int>(0)
            for (from, to) in [(client, upstream), (upstream, client)] {
                Thread { [self] in
                    var buffer = [UInt8](repeating: 0, count: 64 << 10)
                    while true {
                        let n = read(from, &buffer, buffer.count)
                        if n <= 0 { break }
                        bytes.add(n, ordering: .relaxed)
                        var sent = 0
                        while sent < n {
                            let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                            if w <= 0 { break }
                            sent += w
                        }
                        if sent < n { break }
                    }
                    shutdown(to, Int32(SHUT_WR))
                    if done.add(1, ordering: .relaxed).newValue == 2 {
                        close(from)
                        close(to)
                    }
                }.start()
            }
        }
    }
}
