import CZMQ

/// A ZeroMQ context: the I/O threads every socket of a process shares.
///
/// Shutdown order, so that `zmq_ctx_term` never hangs: every socket is made with a short linger
/// (``ZMQSocket/defaultLinger``), each owning thread closes its own sockets, and only then is the
/// context terminated. ``shutdown()`` first wakes any thread blocked in a ZeroMQ call (it returns
/// ETERM), so owners can notice and close.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var terminated = false

    /// - Parameter ioThreads: ZeroMQ's I/O threads (one is plenty below a few Gbit/s).
    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        guard let h = zmq_ctx_new() else { throw ZMQError.last() }
        handle = h
        zmq_ctx_set(h, ZMQ_IO_THREADS, ioThreads)
    }

    /// A new socket of this context, with linger set to ``ZMQSocket/defaultLinger``.
    public func socket(_ kind: ZMQSocket.Kind) throws(ZMQError) -> ZMQSocket {
        try ZMQSocket(context: self, kind: kind)
    }

    /// Makes blocking calls on this context's sockets return ETERM; sockets must still be closed.
    public func shutdown() { zmq_ctx_shutdown(handle) }

    /// Terminates the context once every socket is closed. Call once, after the owners closed theirs.
    public func terminate() {
        guard !terminated else { return }
        terminated = true
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// A ZeroMQ failure: the errno and libzmq's words for it.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let operation: String

    static func last(_ operation: String = "zmq") -> ZMQError { ZMQError(code: zmq_errno(), operation: operation) }

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The context was shut down: the owner should close the socket and stop.
    public var isTermination: Bool { code == ETERM }

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
}
