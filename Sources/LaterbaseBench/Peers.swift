import Foundation
import LaterbaseDemo

/// The systems Laterbase is measured beside, on the same disk in the same run (`--peers`):
/// Redis Streams with every write fsync'd, and PostgreSQL with a Message DB-like table.
/// Each runs as its own server process on loopback with its data in the benchmark folder, and
/// each load is bounded in time or count.
enum Peers {
    /// A 200-byte event, as the store rows write.
    static let payload = SampleLoad.event("notes", 1)

    struct Row {
        let name: String
        let perSecond: Double
        let note: String
    }

    /// Redis 7 XADD, `appendonly yes`, `appendfsync always`: pipelined (16 clients × 100) and not
    /// (64 clients, one command each in flight, as the single-event HTTP row).
    static func redis(folder: String) throws -> [Row] {
        // Absolute: Redis changes to --dir before it opens --logfile.
        let dir = URL(fileURLWithPath: folder + "/redis").standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let port = 6390 + Int.random(in: 0..<90)
        let server = try start("redis-server", [
            "--port", "\(port)", "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--daemonize", "no", "--logfile", dir + "/redis.log",
        ])
        defer {
            // The server may have inherited a blocked SIGTERM from this process: ask it instead.
            if (try? run("redis-cli", ["-p", "\(port)", "shutdown", "nosave"])) == nil { kill(server.processIdentifier, SIGKILL) }
            server.waitUntilExit()
        }
        try waitFor { (try? run("redis-cli", ["-p", "\(port)", "ping"]))?.contains("PONG") == true }
        func load(_ clients: Int, _ pipeline: Int, _ requests: Int) throws -> Double {
            let out = try run("redis-benchmark", ["-p", "\(port)", "-q", "-c", "\(clients)", "-P", "\(pipeline)", "-n", "\(requests)", "XADD", "bench", "*", "data", payload])
            guard let value = number(before: "requests per second", in: out) else { throw BenchError("redis-benchmark gave no result:\n\(out)") }
            return value
        }
        let pipelined = try load(16, 100, 1_000_000)
        let single = try load(64, 1, 300_000)
        return [
            Row(name: "Redis XADD, appendfsync always, pipelined (16 clients × 100)", perSecond: pipelined, note: "no idempotency, no index, no folds"),
            Row(name: "Redis XADD, appendfsync always, one per request (64 clients)", perSecond: single, note: "as the single-event HTTP row"),
        ]
    }

    /// PostgreSQL with Message DB's `messages` table (unique id, unique stream + position,
    /// jsonb data), taking INSERTs of 1000 rows over 10,000 streams, fsync and synchronous commit on.
    static func postgres(folder: String) throws -> [Row] {
        let bin = try postgresBin()
        let dir = URL(fileURLWithPath: folder + "/postgres").standardizedFileURL.path
        let socket = URL(fileURLWithPath: folder + "/pgsock").standardizedFileURL.path
        for d in [dir, socket] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        _ = try run("chown", ["-R", "postgres", dir, socket])
        func asPostgres(_ tool: String, _ args: [String]) throws -> String {
            try run("runuser", ["-u", "postgres", "--", bin + "/" + tool] + args)
        }
        _ = try asPostgres("initdb", ["-D", dir, "-A", "trust", "-U", "postgres"])
        let port = 5490 + Int.random(in: 0..<90)
        // The server outlives pg_ctl: its output goes to the log, never to a pipe read to its end.
        try spawn(["runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir, "-w", "-l", dir + "/log", "-o", "-p \(port) -k \(socket) -c listen_addresses='' -c fsync=on -c synchronous_commit=on", "start"])
        defer { try? spawn(["runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir, "-m", "fast", "stop"]) }
        let connect = ["-h", socket, "-p", "\(port)", "-U", "postgres"]
        let schema = dir + "/schema.sql", insert = dir + "/insert.sql"
        try """
        CREATE TABLE messages (
          global_position bigserial PRIMARY KEY,
          position bigint NOT NULL,
          time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
          stream_name text NOT NULL,
          type text NOT NULL,
          data jsonb,
          metadata jsonb,
          id uuid NOT NULL DEFAULT gen_random_uuid()
        );
        CREATE UNIQUE INDEX messages_id ON messages (id);
        CREATE UNIQUE INDEX messages_stream ON messages (stream_name, position);
        CREATE SEQUENCE positions;
        """.write(toFile: schema, atomically: true, encoding: .utf8)
        try """
        INSERT INTO messages (position, stream_name, type, data)
        SELECT nextval('positions'), 'A-' || (random() * 9999)::int, 'item.scanned', '\(payload)'::jsonb
        FROM generate_series(1, 1000);
        """.write(toFile: insert, atomically: true, encoding: .utf8)
        _ = try run("chown", ["postgres", schema, insert])
        _ = try asPostgres("psql", connect + ["-q", "-v", "ON_ERROR_STOP=1", "-f", schema])
        var rows: [Row] = []
        for clients in [1, 4] {
            // A count, not -T: pgbench times -T with SIGALRM, which a child of this process may
            // have blocked. 120 × 1000 rows take seconds at the rates measured here.
            let out = try asPostgres("pgbench", connect + ["-n", "-c", "\(clients)", "-j", "\(min(clients, 2))", "-t", "\(120 / clients)", "-f", insert, "postgres"])
            guard let tps = number(after: "tps = ", in: out) else { throw BenchError("pgbench gave no result:\n\(out)") }
            rows.append(Row(name: "PostgreSQL, Message DB-like table, 1000-row INSERTs, \(clients) client\(clients > 1 ? "s" : "")", perSecond: tps * 1000, note: "unique id and stream position (from a sequence); no folds"))
        }
        return rows
    }

    private static func postgresBin() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root))?.compactMap(Int.init).sorted() ?? []
        guard let v = versions.last else { throw BenchError("PostgreSQL is not installed (ops/bench.sh --peers installs it)") }
        return "\(root)/\(v)/bin"
    }

    private static func start(_ tool: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs a tool to its end. - Returns: its standard output and error.
    @discardableResult
    private static func run(_ tool: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchError("\(tool) \(args.prefix(3).joined(separator: " ")) failed (\(p.terminationStatus)):\n\(out)") }
        return out
    }

    /// Runs a tool that leaves a daemon behind (pg_ctl start) with posix_spawn and waitpid:
    /// Foundation's Process notices an exit through a descriptor the daemon would inherit.
    private static func spawn(_ argv: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw BenchError("\(argv[0]) did not start: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw BenchError("\(argv.prefix(5).joined(separator: " ")) failed: status \(status)") }
    }

    private static func waitFor(_ ready: () -> Bool) throws {
        for _ in 0..<100 {
            if ready() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw BenchError("a peer server did not start")
    }

    private static func number(before label: String, in text: String) -> Double? {
        guard let range = text.range(of: label, options: .backwards) else { return nil }
        let head = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
        return Double(head.split(separator: " ").last ?? "")
    }

    private static func number(after label: String, in text: String) -> Double? {
        HTTPLoad.number(after: label, in: text)
    }
}
