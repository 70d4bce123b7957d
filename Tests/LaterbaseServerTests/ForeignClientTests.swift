import Foundation
import Testing

@Suite("The contract from another language")
struct ForeignClientTests {
    @Test("a Python client using only pyzmq and json pushes, subscribes and checks deltas against GET /e")
    func python() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try ServerProcess(data: folder)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ForeignClient/zmq_contract.py").path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", script, "http://127.0.0.1:\(server.port)"]
        let output = Pipe()
        python.standardOutput = output
        python.standardError = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0, "\(text)")
        #expect(text.contains("OK: 100 events"), "\(text)")
    }
}
