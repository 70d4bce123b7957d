import CZMQ

/// A ZeroMQ socket. Not thread-safe, as libzmq's are not: one thread owns it at a time, and
/// handing it to another thread must go through a lock or a thread start (a full memory barrier).
public final class ZMQSocket: @unchecked Sendable {
    public enum Kind: Sendable {
        case pub, sub, push, pull
        /// For a ZAP handler (ROUTER, answering requests in any order) and a monitor's reader (PAIR).
        case router, pair

        var raw: Int32 {
            switch self {
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .router: ZMQ_ROUTER
            case .pair: ZMQ_PAIR
            }
        }
    }

    /// Linger every socket starts with, in ms: unsent messages are dropped this long after close,
    /// so closing never waits on a peer that is gone.
    public static let defaultLinger: Int32 = 100

    let handle: UnsafeMutableRawPointer
    public let kind: Kind
    private var closed = false
    /// The user id the ZAP handler gave the connection the last message received came from
    /// (`zmq_msg_gets("User-Id")`), or nil.
    public private(set) var lastUserID: String?
    /// libzmq's file descriptor of the connection the last message received came from
    /// (`ZMQ_SRCFD`), or -1: which connection delivered it (see `IngressRelay`).
    public private(set) var lastSourceDescriptor: Int32 = -1

    init(context: ZMQContext, kind: Kind) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, kind.raw) else { throw ZMQError.last("zmq_socket") }
        handle = h
        self.kind = kind
        try set(ZMQ_LINGER, Self.defaultLinger)
    }

    deinit { close() }

    // MARK: options

    private func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        guard !closed else { throw ZMQError(code: ENOTSOCK, operation: "zmq_setsockopt on a closed socket") }
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    private func set(_ option: Int32, text: String) throws(ZMQError) {
        guard !closed else { throw ZMQError(code: ENOTSOCK, operation: "zmq_setsockopt on a closed socket") }
        let bytes = Array(text.utf8)
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// How long, in ms, unsent messages are kept after ``close()`` (-1: forever; avoid).
    public func setLinger(_ ms: Int32) throws(ZMQError) { try set(ZMQ_LINGER, ms) }
    /// Most messages queued for sending per peer (PUB drops beyond it; PUSH blocks). 0: no limit.
    public func setSendHighWaterMark(_ messages: Int32) throws(ZMQError) { try set(ZMQ_SNDHWM, messages) }
    /// Most messages queued on receipt per peer before the sender is held back. 0: no limit.
    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZMQError) { try set(ZMQ_RCVHWM, messages) }
    /// The kernel receive buffer of each connection (`SO_RCVBUF`), in bytes; set, it stops
    /// the kernel growing it.
    public func setReceiveBuffer(_ bytes: Int32) throws(ZMQError) { try set(ZMQ_RCVBUF, bytes) }
    /// First and largest wait between reconnection attempts, in ms.
    public func setReconnectInterval(_ ms: Int32, max: Int32) throws(ZMQError) {
        try set(ZMQ_RECONNECT_IVL, ms)
        try set(ZMQ_RECONNECT_IVL_MAX, max)
    }
    /// Queue messages only to completed connections (PUSH then blocks while no peer is up).
    public func setImmediate(_ on: Bool) throws(ZMQError) { try set(ZMQ_IMMEDIATE, on ? 1 : 0) }
    /// Largest inbound message in bytes; a peer that sends a bigger one is disconnected. -1: no limit.
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) {
        var v = bytes
        guard zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(MAXMSGSIZE)") }
    }
    /// TCP keepalive probes, so a dead peer behind a silent network is noticed.
    public func setTCPKeepalive(_ on: Bool) throws(ZMQError) { try set(ZMQ_TCP_KEEPALIVE, on ? 1 : 0) }

    /// Makes libzmq ask the ZAP handler (``ZAPRequest``) about every connection, also under the
    /// NULL mechanism, naming this domain in the request.
    public func setZAPDomain(_ domain: String) throws(ZMQError) { try set(ZMQ_ZAP_DOMAIN, text: domain) }

    /// Reports `events` of this socket's connections on a PAIR socket bound at `endpoint`
    /// (`inproc://…`), which the reader connects to; see ``ZMQMonitorEvent``.
    public func monitor(_ endpoint: String, events: ZMQMonitorEvent.Kind) throws(ZMQError) {
        guard zmq_socket_monitor(handle, endpoint, Int32(events.rawValue)) == 0 else { throw ZMQError.last("zmq_socket_monitor") }
    }

    /// How long, in ms, a connection may take over its handshake (ZAP included) before it is
    /// closed; the peer then reconnects. 0: no limit.
    public func setHandshakeInterval(_ ms: Int32) throws(ZMQError) { try set(ZMQ_HANDSHAKE_IVL, ms) }

    /// SUB: receive messages whose first frame starts with `prefix` ("" for all).
    public func subscribe(_ prefix: String) throws(ZMQError) { try set(ZMQ_SUBSCRIBE, text: prefix) }

    // MARK: endpoints

    /// Binds, e.g. `tcp://127.0.0.1:5555` or `tcp://127.0.0.1:*` for a free port.
    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("bind \(endpoint)") }
    }

    /// Connects; ZeroMQ reconnects by itself whenever the peer goes away and comes back.
    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("connect \(endpoint)") }
    }

    /// The endpoint last bound, with the port ZeroMQ chose for `*`.
    public var lastEndpoint: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: messages

    /// Sends a multipart message.
    /// - Parameter wait: false to return at once when the message cannot be queued.
    /// - Returns: false when `wait` is false and the socket would block (high-water mark, no peer).
    @discardableResult
    public func send<Frame: Collection<UInt8>>(_ frames: [Frame], wait: Bool = true) throws(ZMQError) -> Bool {
        guard !closed else { throw ZMQError(code: ENOTSOCK, operation: "zmq_send on a closed socket") }
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = wait ? 0 : ZMQ_DONTWAIT
            if i < frames.count - 1 { flags |= ZMQ_SNDMORE }
            while true {
                let rc = frame.withContiguousStorageIfAvailable { b in zmq_send(handle, b.baseAddress, b.count, flags) }
                    ?? Array(frame).withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if rc >= 0 { break }
                let error = ZMQError.last("zmq_send")
                if error.code == EINTR { continue }
                // ZeroMQ queues a multipart message atomically: EAGAIN can only come on the first frame.
                if error.code == EAGAIN && i == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Receives one whole multipart message.
    /// - Parameter wait: block until one arrives; otherwise return nil when none is waiting.
    /// - Returns: the frames, or nil.
    public func receive(wait: Bool = true) throws(ZMQError) -> [[UInt8]]? {
        switch try receive(wait: wait, maxBytes: .max) {
        case .frames(let frames)?: frames
        case .oversized?, nil: nil
        }
    }

    /// What ``receive(wait:maxBytes:)`` got.
    public enum Received: Sendable, Equatable {
        /// A whole message within the limit.
        case frames([[UInt8]])
        /// A message whose frames add up to more than the limit: read to its end and dropped,
        /// keeping no more than the limit in hand.
        case oversized(bytes: Int, frames: Int)
    }

    /// Receives one multipart message, keeping at most `maxBytes` of it. ZeroMQ's own
    /// `ZMQ_MAXMSGSIZE` limits each frame, not their sum, so a message of many frames would
    /// otherwise bypass it.
    /// - Returns: the message, or nil when `wait` is false and none is waiting.
    public func receive(wait: Bool, maxBytes: Int) throws(ZMQError) -> Received? {
        guard !closed else { throw ZMQError(code: ENOTSOCK, operation: "zmq_msg_recv on a closed socket") }
        var frames: [[UInt8]] = []
        var total = 0, count = 0
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let rc = zmq_msg_recv(&message, handle, (wait || count > 0) ? 0 : ZMQ_DONTWAIT)
            if rc < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.code == EINTR { continue }
                if error.code == EAGAIN && count == 0 { return nil }
                throw error
            }
            let size = zmq_msg_size(&message)
            if count == 0 {
                lastUserID = zmq_msg_gets(&message, "User-Id").map { String(cString: $0) }
                lastSourceDescriptor = zmq_msg_get(&message, ZMQ_SRCFD)
            }
            count += 1
            total = total.addingReportingOverflow(size).overflow ? .max : total + size
            if total <= maxBytes {
                if size == 0 {
                    frames.append([])
                } else if let data = zmq_msg_data(&message) {
                    frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
                }
            } else if !frames.isEmpty {
                frames = []  // over the limit: drop what was kept, read the rest to its end
            }
            if zmq_msg_more(&message) == 0 {
                return total <= maxBytes ? .frames(frames) : .oversized(bytes: total, frames: count)
            }
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }
}

/// Waits up to `timeout` for any of `sockets` to have a message to read.
/// - Returns: for each socket, whether it is readable now.
public func zmqPoll(_ sockets: [ZMQSocket], timeout: Duration) throws(ZMQError) -> [Bool] {
    try zmqPoll(sockets, fileDescriptors: [], timeout: timeout).sockets
}

/// Waits until one of `sockets` has a message or one of `fileDescriptors` is readable (an
/// eventfd another thread signals, say), or `timeout` passes.
/// - Returns: which sockets and which descriptors are readable.
public func zmqPoll(_ sockets: [ZMQSocket], fileDescriptors: [Int32], timeout: Duration) throws(ZMQError)
    -> (sockets: [Bool], fileDescriptors: [Bool])
{
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    items += fileDescriptors.map { zmq_pollitem_t(socket: nil, fd: $0, events: Int16(ZMQ_POLLIN), revents: 0) }
    let (s, a) = timeout.components
    let ms = Int(s * 1000 + a / 1_000_000_000_000_000)
    let rc = zmq_poll(&items, Int32(items.count), ms)
    if rc < 0 {
        let error = ZMQError.last("zmq_poll")
        if error.code == EINTR { return (Array(repeating: false, count: sockets.count), Array(repeating: false, count: fileDescriptors.count)) }
        throw error
    }
    let ready = items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    return (Array(ready[..<sockets.count]), Array(ready[sockets.count...]))
}

/// A CURVE key pair (RFC 26), both keys as 40 characters of Z85.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    /// A new random pair.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: Self.text(pub), secretKey: Self.text(sec))
    }

    /// The pair of a secret key; nil if it is not 40 characters of Z85.
    public init?(secretKey: String) {
        guard secretKey.utf8.count == 40 else { return nil }
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secretKey) == 0 else { return nil }
        self.init(publicKey: Self.text(pub), secretKey: secretKey)
    }

    private init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Makes this socket a CURVE server with `keyPair`: every connection is encrypted, and the
    /// ZAP handler is asked about each client's public key. Before bind.
    public func setCurveServer(_ keyPair: CurveKeyPair) throws(ZMQError) {
        try set(ZMQ_CURVE_SERVER, 1)
        try set(ZMQ_CURVE_SECRETKEY, text: keyPair.secretKey)
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`,
    /// presenting `keyPair`. Before connect.
    public func setCurveClient(serverKey: String, keyPair: CurveKeyPair) throws(ZMQError) {
        try set(ZMQ_CURVE_SERVERKEY, text: serverKey)
        try set(ZMQ_CURVE_PUBLICKEY, text: keyPair.publicKey)
        try set(ZMQ_CURVE_SECRETKEY, text: keyPair.secretKey)
    }
}
