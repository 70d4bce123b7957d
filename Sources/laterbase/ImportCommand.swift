import ArgumentParser
import AsyncHTTPClient
import Foundation
import LaterbaseCore
import Logging
import NIOCore
import NIOHTTP1

/// `laterbase import`: recorded events from NDJSON (as `export` writes them) into a running node
/// over HTTP or into a stopped node's folder.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store recorded events from NDJSON (laterbase export) in a node, over HTTP or into its folder.",
        discussion: """
            Idempotent and resumable: events are replicated as they are (origin, seq, hlc, id), so \
            one already stored is a no-op, and what the target's head covers is skipped without \
            being sent. Re-run it after an interruption and nothing is stored twice. Lines that are \
            not recorded events (a feed's last {"vv", "head", "more"} line) are skipped. Events go \
            in batches of --batch (atomic each); a gap (an origin's earlier events missing from the \
            target) stops the import with the origin and seq it needs.
            """)

    @Option(help: "The root to import into.")
    var root: String
    @Option(help: "The NDJSON file; - for stdin.")
    var file: String = "-"
    @Option(help: "A running node's HTTP URL, e.g. http://127.0.0.1:8080.")
    var url: String?
    @Option(name: .customLong("token-file"), help: "A file holding the bearer token for --url (a peer or admin principal).")
    var tokenFile: String?
    @Option(help: "A stopped node's data folder (instead of --url).")
    var data: String?
    @Option(help: "Events per batch (1 to 10000).")
    var batch: Int = 1000

    func validate() throws {
        guard (url == nil) != (data == nil) else { throw ValidationError("give one of --url (a running node) or --data (a stopped node's folder)") }
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be from 1 to 10000") }
        guard Names.isValidRoot(root) else { throw ValidationError("'\(root)' is not a valid root name") }
    }

    func run() async throws {
        let target: any ImportTarget
        if let url {
            var token: String? = nil
            if let tokenFile {
                guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("--token-file \(tokenFile): cannot read it") }
                token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            target = HTTPTarget(url: url, root: root, token: token)
        } else {
            target = try FolderTarget(directory: data!, root: root)
        }
        do {
            try await run(into: target)
        } catch {
            await target.close()
            throw error
        }
        await target.close()
    }

    private func run(into target: any ImportTarget) async throws {
        let head = try await target.head()
        let input: FileHandle
        if file == "-" { input = .standardInput } else {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
            input = handle
        }
        var lines = LineReader(input)
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        var lineNumber = 0, firstLine = 1
        var skipped = 0, sent = 0
        func flush() async throws {
            guard !pending.isEmpty else { return }
            var body: [UInt8] = [UInt8(ascii: "[")]
            body.reserveCapacity(pendingBytes + pending.count + 2)
            for (i, line) in pending.enumerated() {
                if i > 0 { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: line)
            }
            body.append(UInt8(ascii: "]"))
            do {
                try await target.write(body)
            } catch {
                throw ValidationError("lines \(firstLine)-\(lineNumber): \(error)")
            }
            sent += pending.count
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
            firstLine = lineNumber + 1
            StoreTools.progress("import \(root): \(sent) sent, \(skipped) skipped")
        }
        while let line = lines.next() {
            lineNumber += 1
            guard line.contains(where: { $0 > 0x20 }) else { continue }
            let json: JSON
            do { json = try JSONParser.parse(line) } catch { throw ValidationError("line \(lineNumber) is not JSON: \(error)") }
            guard let origin = json["origin"]?.stringValue, let seq = json["seq"]?.int64Value else {
                if json["vv"] != nil { continue }  // a feed's closing line
                throw ValidationError("line \(lineNumber) is not a recorded event (no origin and seq)")
            }
            if seq > 0, UInt64(seq) <= head[origin] {
                skipped += 1
                continue
            }
            if pending.isEmpty { firstLine = lineNumber }
            pending.append(line)
            pendingBytes += line.count
            if pending.count >= batch || pendingBytes >= 4 << 20 { try await flush() }
        }
        try await flush()
        let after = try await target.head()
        let stored = head.count(missingFrom: after)
        StoreTools.report("import \(root): \(stored) events stored, \(sent - min(sent, stored)) sent but already held, \(skipped) skipped (the target's head covered them); head \(after)")
    }
}

/// Where an import writes.
protocol ImportTarget: Sendable {
    /// What the target holds of the root now.
    func head() async throws -> VersionVector
    /// Writes one batch (a JSON array of recorded events), atomically.
    func write(_ body: [UInt8]) async throws
    func close() async
}

/// A running node, through POST /e/{root}; 503 is retried after its Retry-After, a failed
/// connection up to 4 times (a batch of recorded events is idempotent).
struct HTTPTarget: ImportTarget {
    let url: String
    let root: String
    let token: String?
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    private func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws -> (status: Int, json: JSON, retryAfter: Int?) {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let json = (try? JSONParser.parse(Array(buffer: bytes))) ?? .null
        return (Int(response.status.code), json, response.headers.first(name: "Retry-After").flatMap { Int($0) })
    }

    func head() async throws -> VersionVector {
        let r = try await request(.GET, "/e/\(root)?limit=0")
        guard r.status == 200, let text = r.json["head"]?.stringValue else { throw ImportError(r.status, r.json, "reading the head of \(root) at \(url)") }
        return try VersionVector(parsing: text)
    }

    func write(_ body: [UInt8]) async throws {
        var failures = 0
        while true {
            let r: (status: Int, json: JSON, retryAfter: Int?)
            do {
                r = try await request(.POST, "/e/\(root)", body: body)
            } catch {
                // A dropped connection or a node restarting: the batch is idempotent, send it again.
                failures += 1
                guard failures < 5 else { throw error }
                try await Task.sleep(for: .seconds(failures))
                continue
            }
            if r.status == 503 {
                try await Task.sleep(for: .seconds(r.retryAfter ?? 1))
                continue
            }
            guard r.status == 200 || r.status == 201 else { throw ImportError(r.status, r.json, "POST /e/\(root)") }
            return
        }
    }

    func close() async { try? await client.shutdown() }
}

/// A stopped node's folder, written through a ``Writer`` as the node would (its lock held).
struct FolderTarget: ImportTarget {
    let lock: DataFolderLock
    let store: EventStore
    let writer: Writer
    let root: String

    init(directory: String, root: String) throws {
        lock = try DataFolderLock(directory: directory)
        store = try StoreTools.open(directory, extra: [root], create: true)
        var logger = Logger(label: "laterbase.import")
        logger.logLevel = .warning
        writer = Writer(store: store, logger: logger)
        writer.start()
        self.root = root
    }

    func head() async throws -> VersionVector { try store.head(of: root) }

    func write(_ body: [UInt8]) async throws {
        _ = try await writer.write(try store.prepare(root: root, body: body, replicating: true))
    }

    func close() async { await writer.shutdown() }
}

struct ImportError: Error, CustomStringConvertible {
    let description: String
    init(_ status: Int, _ json: JSON, _ what: String) {
        description = "\(what): \(status) \(json["error"]?.stringValue ?? "") \(json["message"]?.stringValue ?? "")"
            + (json["details"].map { " " + String(decoding: $0.bytes, as: UTF8.self) } ?? "")
    }
}

/// Lines of a file, read in chunks (an export may be larger than memory).
struct LineReader {
    let handle: FileHandle
    var buffer: [UInt8] = []
    var position = 0
    var done = false

    init(_ handle: FileHandle) { self.handle = handle }

    mutating func next() -> [UInt8]? {
        while true {
            if let end = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[position..<end])
                position = end + 1
                return line
            }
            if done {
                guard position < buffer.count else { return nil }
                let line = Array(buffer[position...])
                position = buffer.count
                return line
            }
            buffer.removeFirst(position)
            position = 0
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { done = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
