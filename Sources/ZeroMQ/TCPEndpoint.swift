/// The parts of a `tcp://HOST:PORT` endpoint: HOST as written (an IPv4 address, a name, `*`, or
/// an IPv6 address in brackets), PORT a number (`*`, any free port, reads as 0).
public struct TCPEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int

    /// Nil for another transport (`ipc://`, `inproc://`) or a malformed endpoint.
    public init?(_ endpoint: String) {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let host = String(rest[..<colon]), port = rest[rest.index(after: colon)...]
        guard !host.isEmpty, host.hasPrefix("[") || !host.contains(":") else { return nil }
        guard let number = port == "*" ? 0 : UInt16(port) else { return nil }
        self.host = host
        self.port = Int(number)
    }

    /// Whether the host is an IPv6 address (in brackets).
    public var isIPv6: Bool { host.hasPrefix("[") }
}
