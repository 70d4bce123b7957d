import Foundation
import Testing

@Suite("The contract from another language")
struct ForeignClientTests {
    @Test("a Python client using only pyzmq and json pushes, subscribes and checks deltas against GET /e")
    func python() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try await ServerProcess(data: folder)
        let (status, text) = try await runForeignClient("zmq_contract.py", ["http://127.0.0.1:\(server.port)"])
        #expect(status == 0, "\(text)")
        #expect(text.contains("OK: 100 events"), "\(text)")
    }
}
