import Foundation
import LaterbaseCore

/// What a peer has acknowledged, per root: its head as last seen. Kept in
/// `<data>/peers/<peer replica>.json` (written to a temporary file, fsync'd, renamed) so a restart
/// resumes pushing from there instead of re-sending everything. Losing it costs only re-sending:
/// the peer drops what it already holds.
struct PeerStateFile {
    let path: String

    init(dataDirectory: String, peerReplica: String) {
        let folder = dataDirectory + "/peers"
        // A folder that cannot be made shows as save() failing, which the link logs.
        try? PrivateFiles.makeFolder(folder)
        path = folder + "/\(peerReplica).json"
    }

    /// What the file says the peer acknowledged, and the peer's tokens per root. The tokens say
    /// what this node's store holds: kept only when the store is still in the epoch they were
    /// saved in (a restored store may have lost what they cover; the link starts by vv then).
    func load(epoch: UInt64) -> (acked: [String: VersionVector], tokens: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path), let json = try? JSONParser.parse(Array(data)),
              case .object(let members)? = json["acked"]
        else { return ([:], [:]) }
        var acked: [String: VersionVector] = [:]
        for (root, value) in members {
            if let text = value.stringValue, let vv = try? VersionVector(parsing: text) { acked[root] = vv }
        }
        var tokens: [String: String] = [:]
        if json["epoch"]?.stringValue == Hex.digest(epoch), case .object(let saved)? = json["tokens"] {
            for (root, value) in saved {
                if let token = value.stringValue, PeerClient.isToken(token) || token.isEmpty { tokens[root] = token }
            }
        }
        return (acked, tokens)
    }

    /// Writes the file whole (temporary file, fsync, rename).
    /// - Returns: whether it was written; when not, the previous file stands and a restart
    ///   resends a little more than needed (the peer drops what it holds).
    /// - Parameter epoch: this node's store's, which the tokens are true of.
    func save(url: String, acked: [String: VersionVector], tokens: [String: String] = [:], epoch: UInt64 = 0) -> Bool {
        let body = JSON.object([
            ("peer", .string(url)),
            ("acked", .object(acked.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value.description)) })),
            ("tokens", .object(tokens.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("epoch", .string(Hex.digest(epoch))),
        ]).bytes
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else { return false }
        let written = body.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == body.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }
}
