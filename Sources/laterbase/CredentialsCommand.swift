import ArgumentParser
import Foundation
import LaterbaseCore
import ZeroMQ

/// `laterbase credentials add|list|remove`: keeps a `--credentials` file, so nobody writes token
/// hashes by hand. A token is printed once, when it is made; the file keeps only its SHA-256.
struct CredentialsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Add, list and remove the principals of a --credentials file.",
        discussion: "A running node re-reads the file on SIGHUP (kill -HUP PID).",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a principal; print its token (and with --curve its CURVE key pair) once.",
            discussion: "The file is created if it does not exist (mode 0600). Only the token's SHA-256 is stored: keep the printed token, it cannot be shown again.")

        @Argument(help: "The principal's name (^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$).")
        var name: String
        @Option(help: "admin, peer, device, reader or monitor.")
        var role: String
        @Option(help: "A device's one origin (its replica id).")
        var origin: String?
        @Option(help: "Roots a device may write, comma-separated, or * for all.")
        var write: String?
        @Option(help: "Roots a device or reader may read, comma-separated, or * for all.")
        var read: String?
        @Option(help: "The credentials file.")
        var file: String
        @Flag(help: "Also make a CURVE key pair for ZeroMQ; its public key goes in the file.")
        var curve = false
        @Option(name: .customLong("curve-public-key"), help: "The principal's existing CURVE public key (e.g. a peer node's, from its GET /node).")
        var curvePublicKey: String?

        func run() throws {
            var principals = try CredentialsFile.read(file)
            guard !principals.contains(where: { $0["name"]?.stringValue == name }) else { throw ValidationError("'\(name)' is already in \(file)") }
            var bytes = [UInt8](repeating: 0, count: 32)
            var random = SystemRandomNumberGenerator()
            for i in bytes.indices { bytes[i] = random.next() }
            let token = Hex.encode(bytes)
            let pair = curve ? try CurveKeyPair.generate() : nil
            var members: [(key: String, value: JSON)] = [("name", .string(name)), ("role", .string(role)), ("token_sha256", .string(SHA256.hex(token)))]
            if let key = pair?.publicKey ?? curvePublicKey { members.append(("curve_public_key", .string(key))) }
            if let origin { members.append(("origin", .string(origin))) }
            for (field, list) in [("write", write), ("read", read)] {
                guard let list else { continue }
                members.append((field, .array(list.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })))
            }
            principals.append(.object(members))
            try CredentialsFile.write(principals, to: file)
            print("added \(name) (\(role)) to \(file)")
            print("token: \(token)")
            if let pair {
                print("curve public key: \(pair.publicKey)")
                print("curve secret key: \(pair.secretKey)")
            }
            print("Keep these now: the file holds only the token's hash. A running node takes them after kill -HUP.")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the principals (never a token: the file has none).")
        @Option(help: "The credentials file.")
        var file: String

        func run() throws {
            let credentials: Credentials
            do { credentials = try Credentials(contentsOf: file) } catch { throw ValidationError("\(file): \(error)") }
            for p in credentials.principals {
                var line = "\(p.name)\t\(p.role.rawValue)"
                if let origin = p.origin { line += "\torigin=\(origin)" }
                if p.role == .device { line += "\twrite=\(Self.text(p.write))" }
                if p.role == .device || p.role == .reader { line += "\tread=\(Self.text(p.read))" }
                if let key = p.curvePublicKey { line += "\tcurve=\(key)" }
                print(line)
            }
        }

        static func text(_ roots: Principal.Roots) -> String {
            switch roots {
            case .all: "*"
            case .named(let names): names.sorted().joined(separator: ",")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a principal; a running node refuses its token after kill -HUP.")
        @Argument(help: "The principal's name.")
        var name: String
        @Option(help: "The credentials file.")
        var file: String

        func run() throws {
            var principals = try CredentialsFile.read(file)
            let before = principals.count
            principals.removeAll { $0["name"]?.stringValue == name }
            guard principals.count < before else { throw ValidationError("'\(name)' is not in \(file)") }
            try CredentialsFile.write(principals, to: file)
            print("removed \(name) from \(file)")
        }
    }
}

/// Reading and writing the file's principals as JSON, checked whole before anything is written.
enum CredentialsFile {
    static func read(_ path: String) throws -> [JSON] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        guard case .array(let list)? = (try? JSONParser.parse(Array(data)))?["principals"] else {
            throw ValidationError(#"\#(path) is not a credentials file ({"principals": [...]})"#)
        }
        return list
    }

    /// Writes `principals` (one to a line) if they make a valid file, atomically, mode 0600.
    static func write(_ principals: [JSON], to path: String) throws {
        let text = "{\"principals\": [\n" + principals.map { "  " + String(decoding: $0.bytes, as: UTF8.self) }.joined(separator: ",\n") + "\n]}\n"
        do { _ = try Credentials(json: Array(text.utf8)) } catch { throw ValidationError("not written: \(error)") }
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ValidationError("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }
}
