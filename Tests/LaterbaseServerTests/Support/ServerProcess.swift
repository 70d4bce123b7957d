import Foundation

/// The `laterbase` executable run as a real process on loopback, its log in a file.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let data: String
    let log: String
    private(set) var port = 0

    /// The built `laterbase` binary: beside the test bundle, or LATERBASE_BIN.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["LATERBASE_BIN"] { return path }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("laterbase").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/laterbase").path
    }

    /// Starts `laterbase serve` on a free port and waits until it listens. The waits sleep as
    /// tasks, never as threads: the suite's in-process servers share the cooperative pool (two
    /// threads here), and a test blocking it starved their requests for seconds.
    /// `umask`, when given, is the process's (set by a shell that then runs the node).
    init(data: String, replica: String? = "hq-1", http: String = "127.0.0.1:0", arguments: [String] = [], umask: String? = nil) async throws {
        self.data = data
        log = data + ".log-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let serve = [
            "serve", "--data", data, "--http", http, "--root", "notes", "--ingest", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
        ] + (replica.map { ["--replica-id", $0] } ?? []) + arguments
        if let umask {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "umask \(umask) && exec \"$0\" \"$@\"", Self.binary] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = serve
        }
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on "), let colon = text[range.upperBound...].prefix(while: { !$0.isNewline }).lastIndex(of: ":") {
                let digits = text[text.index(after: colon)...].prefix { $0.isNumber }
                if let p = Int(digits) {
                    port = p
                    return
                }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw ProcessError(message: "laterbase did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    struct ProcessError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit; returns its exit status.
    func waitForExit(timeout: TimeInterval = 30) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: log)
    }
}

/// A TCP port nothing listens on right now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ServerProcess.ProcessError(message: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a command to its end; its exit status and everything it printed. It is waited for on a
/// thread of its own, off the cooperative pool (see ``ServerProcess``).
func runToEnd(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            do { try process.run() } catch { return continuation.resume(throwing: error) }
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(returning: (process.terminationStatus, String(decoding: output, as: UTF8.self)))
        }
    }
}

/// Runs `laterbase` with `arguments` to its end.
func runLaterbase(_ arguments: [String]) async throws -> (status: Int32, output: String) { try await runToEnd(ServerProcess.binary, arguments) }

/// Runs a script of `Tests/ForeignClient` with python3 to its end.
func runForeignClient(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ForeignClient/\(script)").path
    return try await runToEnd("/usr/bin/env", ["python3", path] + arguments)
}
