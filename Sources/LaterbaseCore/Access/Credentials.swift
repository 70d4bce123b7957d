import Foundation
import Synchronization

/// The principals of a `--credentials` file: `{"principals": [{"name", "role", "token_sha256",
/// "curve_public_key"?, "origin"?, "write"?, "read"?}, …]}`. The file holds token hashes, never tokens.
public struct Credentials: Sendable {
    public let principals: [Principal]
    private let byTokenHash: [[UInt8]: Principal]
    private let byName: [String: Principal]
    private let byCurveKey: [String: Principal]

    /// A file that is not valid: the message names the principal where there is one.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(principals: [Principal]) throws(Invalid) {
        var byName: [String: Principal] = [:], byToken: [[UInt8]: Principal] = [:], byKey: [String: Principal] = [:]
        for p in principals {
            guard byName.updateValue(p, forKey: p.name) == nil else { throw Invalid(description: "principal '\(p.name)': the name is used twice") }
            guard byToken.updateValue(p, forKey: p.tokenSHA256) == nil else { throw Invalid(description: "principal '\(p.name)': its token_sha256 is another principal's") }
            if let key = p.curvePublicKey, byKey.updateValue(p, forKey: key) != nil {
                throw Invalid(description: "principal '\(p.name)': its curve_public_key is another principal's")
            }
        }
        self.principals = principals
        self.byName = byName
        self.byTokenHash = byToken
        self.byCurveKey = byKey
    }

    /// Reads the file's JSON.
    public init(json bytes: [UInt8]) throws(Invalid) {
        let json: JSON
        do { json = try JSONParser.parse(bytes) } catch { throw Invalid(description: "not JSON: \(error)") }
        guard case .array(let list)? = json["principals"] else { throw Invalid(description: #"the file must be {"principals": [...]}"#) }
        var principals: [Principal] = []
        for (index, entry) in list.enumerated() {
            principals.append(try Self.principal(entry, index: index))
        }
        try self.init(principals: principals)
    }

    /// Reads the file at `path`.
    public init(contentsOf path: String) throws(Invalid) {
        guard let data = FileManager.default.contents(atPath: path) else { throw Invalid(description: "cannot read \(path)") }
        try self.init(json: Array(data))
    }

    /// The principal whose token is `token`, compared by its hash in constant time.
    public func principal(token: String) -> Principal? {
        let digest = SHA256.hash(Array(token.utf8))
        guard let candidate = byTokenHash[digest] else { return nil }
        // The dictionary found it by the hash's hash; confirm every byte without an early exit.
        var difference: UInt8 = 0
        for (a, b) in zip(candidate.tokenSHA256, digest) { difference |= a ^ b }
        return difference == 0 ? candidate : nil
    }

    public func principal(named name: String) -> Principal? { byName[name] }

    /// The principal whose CURVE public key is `key` (Z85).
    public func principal(curveKey key: String) -> Principal? { byCurveKey[key] }

    private static func principal(_ entry: JSON, index: Int) throws(Invalid) -> Principal {
        guard case .object = entry, let name = entry["name"]?.stringValue else { throw Invalid(description: "principal \(index): no name") }
        func fail(_ why: String) -> Invalid { Invalid(description: "principal '\(name)': \(why)") }
        guard Names.isValidOrigin(name) else { throw fail("the name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$") }
        guard let roleText = entry["role"]?.stringValue, let role = Principal.Role(rawValue: roleText) else {
            throw fail("role must be one of \(Principal.Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let hex = entry["token_sha256"]?.stringValue, let hash = Hex.decode(hex), hash.count == 32 else {
            throw fail("token_sha256 must be 64 lowercase hex digits (the SHA-256 of the token)")
        }
        var key: String?
        if let value = entry["curve_public_key"], value != .null {
            guard let text = value.stringValue, Z85.isKey(text) else { throw fail("curve_public_key must be 40 characters of Z85") }
            key = text
        }
        var origin: String?
        if role == .device {
            guard let o = entry["origin"]?.stringValue else { throw fail("a device needs its origin") }
            guard Names.isValidOrigin(o) else { throw fail("origin '\(o)' is not a valid origin") }
            origin = o
        } else if let value = entry["origin"], value != .null {
            throw fail("only a device has an origin")
        }
        let write = try roots(entry["write"], "write", role: role, fail)
        let read = try roots(entry["read"], "read", role: role, fail)
        return Principal(name: name, role: role, tokenSHA256: hash, curvePublicKey: key, origin: origin, write: write, read: read)
    }

    private static func roots(_ value: JSON?, _ field: String, role: Principal.Role, _ fail: (String) -> Invalid) throws(Invalid) -> Principal.Roots {
        let applies = role == .device || (role == .reader && field == "read")
        guard let value, value != .null else {
            if applies { throw fail("\(field) must list root names, or [\"*\"] for all") }
            return .named([])
        }
        guard applies else { throw fail("a \(role.rawValue) has no \(field) list") }
        guard case .array(let items) = value else { throw fail("\(field) must be a list of root names") }
        var names: Set<String> = []
        for item in items {
            guard let text = item.stringValue else { throw fail("\(field) must be a list of root names") }
            if text == "*" { return .all }
            guard Names.isValidRoot(text) else { throw fail("'\(text)' in \(field) is not a root name") }
            names.insert(text)
        }
        return .named(names)
    }
}

/// The node's access rules in force: open (no `--credentials`, every caller is
/// ``Principal/open``) or the principals of a file, replaced whole by ``reload()`` (SIGHUP).
public final class Access: Sendable {
    /// The credentials file, if any.
    public let path: String?
    private let current: Mutex<Credentials?>
    private let reloads = Atomic<UInt64>(0)

    /// An open node: everything is allowed to everyone.
    public static func open() -> Access { Access(path: nil, credentials: nil) }

    /// The principals of the file at `path`.
    public convenience init(credentialsFile path: String) throws(Credentials.Invalid) {
        self.init(path: path, credentials: try Credentials(contentsOf: path))
    }

    public init(path: String?, credentials: Credentials?) {
        self.path = path
        current = Mutex(credentials)
    }

    /// Whether credentials are required.
    public var isEnforced: Bool { current.withLock { $0 != nil } }

    /// Re-reads the file. If it is not valid, the principals in force stay and the error is thrown.
    public func reload() throws(Credentials.Invalid) {
        guard let path else { return }
        let fresh = try Credentials(contentsOf: path)
        current.withLock { $0 = fresh }
        reloads.add(1, ordering: .releasing)
    }

    /// How many times the principals were replaced: something holding a principal across
    /// reloads (a live feed) looks it up again with ``refreshed(_:)`` when this changes.
    public var generation: UInt64 { reloads.load(ordering: .acquiring) }

    /// The principal in force now with `principal`'s name and token, as the file says now; nil
    /// once a reload removed it or gave it another token.
    public func refreshed(_ principal: Principal) -> Principal? {
        current.withLock { credentials in
            guard let credentials else { return principal }
            guard let now = credentials.principal(named: principal.name), now.tokenSHA256 == principal.tokenSHA256 else { return nil }
            return now
        }
    }

    /// Who presents `token`: ``Principal/open`` on an open node; nil if no principal has it.
    public func principal(token: String?) -> Principal? {
        current.withLock { credentials in
            guard let credentials else { return .open }
            return token.flatMap { credentials.principal(token: $0) }
        }
    }

    /// The principal named `name` (a ZeroMQ connection's user id), as the file says now.
    public func principal(named name: String) -> Principal? {
        current.withLock { credentials in credentials == nil ? .open : credentials?.principal(named: name) }
    }

    /// The principal whose CURVE public key (Z85) is `key`.
    public func principal(curveKey key: String) -> Principal? {
        current.withLock { credentials in credentials == nil ? .open : credentials?.principal(curveKey: key) }
    }
}
