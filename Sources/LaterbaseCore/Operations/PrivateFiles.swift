import Foundation

/// A node's files are its owner's alone (CONTRACT.md v3 audit): folders are made 0700 and files
/// 0600, named in the `open` call, so no umask can make them readable by others (a umask only
/// takes bits away). The events, the CURVE secret key and the peers' checkpoints are in them.
public enum PrivateFiles {
    /// The mode every data file is created with.
    public static let fileMode: mode_t = 0o600

    /// Makes `path` and any missing parents, 0700; nothing if it exists.
    public static func makeFolder(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
}
