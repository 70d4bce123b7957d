import Foundation
import LaterbaseCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A filesystem that fills (ENOSPC, not the map): the node answers 507 and stores nothing of the
/// refused batch, reads go on, and once there is room again writes succeed with nothing lost.
/// Needs root to mount a small tmpfs (CI runs as root).
@Suite("A full disk", .serialized, .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
struct DiskFullTests {
    @Test func aFullFilesystemIs507ThenWritesResumeWithNothingLost() async throws {
        let mount = temporaryFolder()
        #expect(run("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount]) == 0)
        defer { _ = run("/bin/umount", ["-l", mount]) }
        try await withServer(configure: {
            $0.dataDirectory = mount + "/data"
            $0.store.mapSize = 1 << 30  // far beyond the disk: the filesystem is what fills
        }) { http, _ in
            var acknowledged = 0
            for i in 0..<20 {
                let r = try await http.post("/e/notes", #"{"aggregate":"a\#(i % 3)","type":"t","data":{"i":\#(i)}}"#)
                #expect(r.status == 201)
                acknowledged += 1
            }
            // Fill what is left of the filesystem.
            let filler = mount + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
            let chunk = [UInt8](repeating: 1, count: 64 << 10)
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)

            let pad = String(repeating: "x", count: 2000)
            let batch = "[" + Array(repeating: #"{"aggregate":"big","type":"t","data":{"pad":"\#(pad)"}}"#, count: 500).joined(separator: ",") + "]"
            let full = try await http.post("/e/notes", batch)
            #expect(full.status == 507)
            #expect(full.error == "storage_full", "\(full.text)")
            // Reads go on, and nothing of the refused batch is there.
            let during = try await http.allEvents("notes")
            #expect(during.events.count == acknowledged)
            #expect(try await http.get("/a/notes/a1").status == 200)
            #expect(try await http.get("/a/notes/big").status == 404)
            #expect(try await http.get("/healthz").status == 200)

            // Room again: the same batch is written, and every acknowledged event is there once.
            unlink(filler)
            let again = try await http.post("/e/notes", batch)
            #expect(again.status == 201)
            acknowledged += 500
            let after = try await http.allEvents("notes")
            #expect(after.events.count == acknowledged)
            #expect(Set(after.events.compactMap { $0["seq"]?.int64Value }).count == acknowledged)
            #expect(try await http.get("/a/notes/big").json["events"] == .integer(500))
        }
    }

    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
