import Foundation
import Logging
import Metrics
import Synchronization

/// A TCP relay in front of a libzmq socket that bounds what each connection can make the node
/// hold (CONTRACT.md v3, "The front door under load": an unfinished multipart message counts
/// against the message limit from its first frame).
///
/// Why a relay: libzmq limits each frame (`ZMQ_MAXMSGSIZE`) and each connection's queue in whole
/// messages (the high-water mark), but the frames of a message still arriving are held where the
/// application cannot see them (the pipe only lets a message be read once its last frame came),
/// so a sender that marks frame after frame "more" grew a node from 37 to 640 MiB and beyond.
/// No socket option bounds that, and reading frame by frame (`ZMQ_RCVMORE`) sees nothing
/// either. The frames' MORE flag is not on the wire under CURVE (it is inside the encrypted
/// box), so the relay does not parse ZMTP: it counts the bytes each connection sent that the
/// application has not yet taken a message of, and drops the connection when they pass
/// ``budget``. The application tells it after each message it takes which connection the
/// message came from (``delivered(libzmqDescriptor:)``, from the message's `ZMQ_SRCFD`): that
/// connection's count starts again. What a connection can hold is so at most about twice the
/// budget (what it sent before its last delivered message was taken, and the budget after).
///
/// Two directions:
/// - ``Direction/accept``: the relay listens where the socket would (the ingest endpoint) and
///   connects each connection to the socket, bound on loopback; the outside is the accepted side.
/// - ``Direction/connect``: the relay listens on loopback for the socket (a SUB subscribing to a
///   peer) and connects each connection out to `target`; the outside is the connected side.
///
/// One thread polls every connection; each side has a buffer of 64 KiB, filled only when the
/// other side took the last one, so a slow socket slows its sender and nothing queues here.
public final class IngressRelay: Sendable {
    public enum Direction: Sendable { case accept, connect }

    /// Where the relay listens (its port chosen when 0 was asked for).
    public let listenAddress: (host: String, port: Int)
    /// Where it connects each connection.
    public let target: (host: String, port: Int)
    public let direction: Direction
    /// Bytes a connection may send that the application has not taken a message of.
    public let budget: Int
    private let listener: Int32
    private let thread = SocketThread(name: "laterbase-relay")
    /// Ports of the relay's inside sockets whose connection delivered a message, for the thread.
    private let deliveries = Mutex<[UInt16]>([])
    private let dropped: Counter
    private let logger: Logger

    /// Listens; relaying starts with ``start()``.
    /// - Parameters:
    ///   - listen: host (an address, `*` or `0.0.0.0` for all) and port (0: any).
    ///   - target: where each connection is relayed to.
    public init(listen: (host: String, port: Int), target: (host: String, port: Int), direction: Direction, budget: Int, name: String, factory: any MetricsFactory, logger: Logger) throws {
        self.target = target
        self.direction = direction
        self.budget = budget
        self.logger = logger
        dropped = Counter(label: "laterbase_zmq_connections_over_budget_total", dimensions: [("socket", name)], factory: factory)
        listener = try Self.listen(host: listen.host, port: listen.port)
        listenAddress = (listen.host, Self.localPort(listener))
    }

    /// The application took a message that came in on libzmq's connection `fd` (the message's
    /// `ZMQ_SRCFD`): that connection's count starts again.
    public func delivered(libzmqDescriptor fd: Int32) {
        // With .accept the relay connected to libzmq, so libzmq's peer is the relay's inside
        // socket; with .connect libzmq connected to the relay, so libzmq's own address is the
        // inside socket's peer.
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { direction == .accept ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
        }
        guard ok == 0, address.sin_family == sa_family_t(AF_INET) else { return }
        let port = UInt16(bigEndian: address.sin_port)
        deliveries.withLock { $0.append(port) }
    }

    /// Why the relay stopped without being asked to, or nil.
    public var failure: String? { thread.failure }

    public func start() {
        thread.start { [self] in
            run()
            close(listener)
        }
    }

    @available(*, noasync, message: "await stop(): this one blocks the calling thread until the relay thread has ended")
    public func stop() {
        if !thread.stop() { close(listener) }
    }

    public func stop() async {
        if await !thread.stop() { close(listener) }
    }

    // MARK: the relay thread

    private final class Connection {
        let outside: Int32
        let inside: Int32
        /// The inside socket's port as libzmq's side sees it (``delivered(libzmqDescriptor:)``).
        let key: UInt16
        var connecting: Bool
        /// The socket the relay connected (inside with .accept, outside with .connect).
        let connected: Int32
        var toInside: [UInt8] = []
        var toOutside: [UInt8] = []
        var sentInside = 0, sentOutside = 0
        var pending = 0
        var outsideClosed = false, insideClosed = false

        init(outside: Int32, inside: Int32, key: UInt16, connecting: Bool, connected: Int32) {
            self.outside = outside
            self.inside = inside
            self.key = key
            self.connecting = connecting
            self.connected = connected
        }
    }

    private static let chunk = 64 << 10

    private func run() {
        var connections: [Connection] = []
        var buffer = [UInt8](repeating: 0, count: Self.chunk)
        while !thread.isStopping {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            for c in connections {
                var o: Int32 = 0, i: Int32 = 0
                if c.connecting {
                    if c.connected == c.inside { i = POLLOUT } else { o = POLLOUT }
                } else {
                    if !c.outsideClosed && c.toInside.isEmpty { o |= POLLIN }
                    if c.sentOutside < c.toOutside.count { o |= POLLOUT }
                    if !c.insideClosed && c.toOutside.isEmpty { i |= POLLIN }
                    if c.sentInside < c.toInside.count { i |= POLLOUT }
                }
                // A side this turn wants nothing of is left out (a negative fd): a hung-up socket
                // would otherwise be reported at every poll while the other side cannot take
                // what was read from it, and the thread would spin.
                fds.append(pollfd(fd: o == 0 ? -1 : c.outside, events: Int16(o), revents: 0))
                fds.append(pollfd(fd: i == 0 ? -1 : c.inside, events: Int16(i), revents: 0))
            }
            let ready = poll(&fds, nfds_t(fds.count), 50)
            let delivered = deliveries.withLock { d -> [UInt16] in defer { d.removeAll() }; return d }
            if !delivered.isEmpty {
                let keys = Set(delivered)
                for c in connections where keys.contains(c.key) { c.pending = 0 }
            }
            guard ready > 0 else { continue }
            var ended: Set<Int32> = []
            for (index, c) in connections.enumerated() {
                let o = fds[1 + 2 * index].revents, i = fds[2 + 2 * index].revents
                if c.connecting {
                    let r = c.connected == c.inside ? i : o
                    guard r != 0 else { continue }
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(c.connected, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error != 0 || r & Int16(POLLERR | POLLHUP) != 0 {
                        ended.insert(c.outside)
                        continue
                    }
                    c.connecting = false
                    continue
                }
                // Outside to inside, counted.
                if o & Int16(POLLIN | POLLHUP | POLLERR) != 0 && c.toInside.isEmpty && !c.outsideClosed {
                    let n = buffer.withUnsafeMutableBytes { read(c.outside, $0.baseAddress, Self.chunk) }
                    if n > 0 {
                        c.toInside = Array(buffer[..<n])
                        c.sentInside = 0
                        c.pending += n
                        if c.pending > budget {
                            dropped.increment()
                            logger.warning("ZeroMQ connection dropped: it sent more than a message's worth that no message came of (an unfinished multipart message?)", metadata: [
                                "pending_bytes": "\(c.pending)", "budget_bytes": "\(budget)",
                            ])
                            ended.insert(c.outside)
                            continue
                        }
                    } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                        c.outsideClosed = true
                    }
                }
                if i & Int16(POLLIN | POLLHUP | POLLERR) != 0 && c.toOutside.isEmpty && !c.insideClosed {
                    let n = buffer.withUnsafeMutableBytes { read(c.inside, $0.baseAddress, Self.chunk) }
                    if n > 0 {
                        c.toOutside = Array(buffer[..<n])
                        c.sentOutside = 0
                    } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                        c.insideClosed = true
                    }
                }
                if !Self.flush(c.inside, &c.toInside, &c.sentInside) || !Self.flush(c.outside, &c.toOutside, &c.sentOutside) {
                    ended.insert(c.outside)
                    continue
                }
                // Either side gone and nothing left for the other: the connection ends.
                if (c.outsideClosed && c.toInside.isEmpty) || (c.insideClosed && c.toOutside.isEmpty) { ended.insert(c.outside) }
            }
            if !ended.isEmpty {
                for c in connections where ended.contains(c.outside) {
                    close(c.outside)
                    close(c.inside)
                }
                connections.removeAll { ended.contains($0.outside) }
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                while connections.count < 60_000, let c = acceptOne() { connections.append(c) }
            }
        }
        for c in connections {
            close(c.outside)
            close(c.inside)
        }
    }

    /// Writes what `buffer` holds from `sent` on; empties it once all is written. False on an error.
    private static func flush(_ fd: Int32, _ buffer: inout [UInt8], _ sent: inout Int) -> Bool {
        while sent < buffer.count {
            let n = buffer[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return true }
            return false
        }
        buffer.removeAll(keepingCapacity: true)
        sent = 0
        return true
    }

    /// Accepts a connection and starts connecting it to the target; nil when none is waiting.
    private func acceptOne() -> Connection? {
        let accepted = accept(listener, nil, nil)
        guard accepted >= 0 else { return nil }
        _ = fcntl(accepted, F_SETFL, fcntl(accepted, F_GETFL) | O_NONBLOCK)
        _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
        guard let (out, connecting) = try? Self.connect(host: target.host, port: target.port) else {
            close(accepted)
            return acceptOne()
        }
        // Small kernel buffers on the loopback side, so what a connection can hold is what the
        // budget says, not what the kernel's autotuning allows.
        var size: Int32 = 256 << 10
        let loopbackSide = direction == .accept ? out : accepted
        setsockopt(loopbackSide, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        switch direction {
        case .accept:
            return Connection(outside: accepted, inside: out, key: UInt16(Self.localPort(out)), connecting: connecting, connected: out)
        case .connect:
            return Connection(outside: out, inside: accepted, key: UInt16(Self.peerPort(accepted)), connecting: connecting, connected: out)
        }
    }

    // MARK: sockets

    struct SocketError: Error, CustomStringConvertible {
        let description: String
    }

    private static func address(host: String, port: Int, passive: Bool) throws -> sockaddr_in {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        if passive { hints.ai_flags = AI_PASSIVE }
        var result: UnsafeMutablePointer<addrinfo>?
        let node = (host == "*" || host.isEmpty) ? nil : host
        let rc = getaddrinfo(node, String(port), &hints, &result)
        guard rc == 0, let first = result, let sa = first.pointee.ai_addr else {
            throw SocketError(description: "cannot resolve \(host):\(port) as an IPv4 address: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
    }

    private static func listen(host: String, port: Int) throws -> Int32 {
        var address = try address(host: host, port: port, passive: true)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 1024) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw SocketError(description: "cannot listen on \(host):\(port): \(why)")
        }
        return fd
    }

    /// A non-blocking socket connecting to `host:port`; whether the connect is still under way.
    private static func connect(host: String, port: Int) throws -> (Int32, Bool) {
        var address = try address(host: host, port: port, passive: false)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket: \(String(cString: strerror(errno)))") }
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc == 0 { return (fd, false) }
        guard errno == EINPROGRESS else {
            close(fd)
            throw SocketError(description: "connect \(host):\(port): \(String(cString: strerror(errno)))")
        }
        return (fd, true)
    }

    private static func localPort(_ fd: Int32) -> Int { port(fd, local: true) }
    private static func peerPort(_ fd: Int32) -> Int { port(fd, local: false) }

    private static func port(_ fd: Int32, local: Bool) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { local ? getsockname(fd, $0, &length) : getpeername(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
