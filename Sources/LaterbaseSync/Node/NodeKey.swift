import Foundation
import LaterbaseCore
import ZeroMQ

/// The node's CURVE key pair: from `--curve-secret-key FILE`, or made once and kept in the data
/// folder (mode 0600), so the public key peers and devices pin stays the same across restarts.
public enum NodeKey {
    /// The secret key's file in the data folder.
    public static let fileName = "curve-secret.key"

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads the secret key from `secretKeyFile` (surrounding whitespace ignored), or from the data
    /// folder, making it there first if there is none.
    public static func load(dataDirectory: String, secretKeyFile: String?) throws(Invalid) -> CurveKeyPair {
        let path = secretKeyFile ?? (dataDirectory as NSString).appendingPathComponent(fileName)
        if secretKeyFile == nil && !FileManager.default.fileExists(atPath: path) {
            try create(at: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw Invalid(description: "cannot read the CURVE secret key \(path)") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pair = CurveKeyPair(secretKey: text) else { throw Invalid(description: "\(path) does not hold a CURVE secret key (40 characters of Z85)") }
        return pair
    }

    private static func create(at path: String) throws(Invalid) {
        try? PrivateFiles.makeFolder((path as NSString).deletingLastPathComponent)
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair.generate() } catch { throw Invalid(description: "cannot make a CURVE key pair: \(error)") }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else { throw Invalid(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array((pair.secretKey + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw Invalid(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
