import CZMQ

/// The ZeroMQ Authentication Protocol (RFC 27): libzmq asks a handler bound at
/// ``ZAPRequest/endpoint`` (a REP or ROUTER socket in the same context) whether to admit each connection of
/// a socket that has a ZAP domain (``ZMQSocket/setZAPDomain(_:)``) or a CURVE/PLAIN mechanism.
public struct ZAPRequest: Sendable, Equatable {
    /// Where the handler binds, in the context of the sockets it guards.
    public static let endpoint = "inproc://zeromq.zap.01"

    public var version: String
    public var requestID: [UInt8]
    /// The socket's ZAP domain.
    public var domain: String
    /// The peer's IP address.
    public var address: String
    public var identity: [UInt8]
    /// `NULL`, `PLAIN` or `CURVE`.
    public var mechanism: String
    /// For CURVE, the client's 32-byte public key; for PLAIN, user name and password.
    public var credentials: [[UInt8]]

    /// Reads a request's frames. - Returns: nil when they are not a ZAP 1.0 request.
    public init?(frames: [[UInt8]]) {
        guard frames.count >= 6 else { return nil }
        version = String(decoding: frames[0], as: UTF8.self)
        guard version == "1.0" else { return nil }
        requestID = frames[1]
        domain = String(decoding: frames[2], as: UTF8.self)
        address = String(decoding: frames[3], as: UTF8.self)
        identity = frames[4]
        mechanism = String(decoding: frames[5], as: UTF8.self)
        credentials = Array(frames.dropFirst(6))
    }

    /// The reply's frames: `200` admits, `400` refuses; `userID` tags the connection's messages
    /// (read back with `zmq_msg_gets("User-Id")`).
    public func reply(admit: Bool, text: String, userID: String = "") -> [[UInt8]] {
        [Array("1.0".utf8), requestID, Array((admit ? "200" : "400").utf8), Array(text.utf8), Array(userID.utf8), []]
    }
}

/// What a socket monitor reports (``ZMQSocket/monitor(_:events:)``).
public struct ZMQMonitorEvent: Sendable, Equatable {
    public struct Kind: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let accepted = Kind(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
        public static let disconnected = Kind(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
        public static let closed = Kind(rawValue: UInt16(ZMQ_EVENT_CLOSED))
        public static let handshakeSucceeded = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        public static let handshakeFailedAuth = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        public static let handshakeFailedProtocol = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        public static let handshakeFailedNoDetail = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        /// Any of the three handshake failures.
        public static let handshakeFailed: Kind = [.handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail]
    }

    public var kind: Kind
    /// For accepted, disconnected and closed: the connection's file descriptor.
    public var value: UInt32
    public var endpoint: String

    /// Reads the two frames a monitor sends: 2 bytes of event, 4 of value (native byte order), then
    /// the endpoint.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let f = frames[0]
        kind = Kind(rawValue: UInt16(f[0]) | UInt16(f[1]) << 8)
        value = UInt32(f[2]) | UInt32(f[3]) << 8 | UInt32(f[4]) << 16 | UInt32(f[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}
