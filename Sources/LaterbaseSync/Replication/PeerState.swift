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
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/\(peerReplica).json"
    }

    func load() -> [String: VersionVector] {
        guard let data = FileManager.default.contents(atPath: path), let json = try? JSONParser.parse(Array(data)),
              case .object(let members)? = json["acked"]
        else { return [:] }
        var out: [String: VersionVector] = [:]
        for (root, value) in members {
            if let text = value.stringValue, let vv = try? VersionVector(parsing: text) { out[root] = vv }
        }
        return out
    }

    /// Writes the file whole (temporary file, fsync, rename).
    /// - Returns: whether it was written; when not, the previous file stands and a restart
    ///   resends a little more than needed (the peer drops what it holds).
    func save(url: String, acked: [String: VersionVector]) -> Bool {
        let body = JSON.object([
            ("peer", .string(url)),
            ("acked", .object(acked.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value.description)) })),
        ]).bytes
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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
