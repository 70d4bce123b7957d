import Foundation
import NIOCore
import LaterbaseCore
import LaterbaseDemo
import Synchronization
import Testing
import ZeroMQ

/// A device on a node's ZeroMQ sockets, on a thread of its own: pushes messages of new events
/// until stopped, and records as acknowledged every id it sees in a published delta (the node
/// publishes only what is durable).
final class ZMQLoad: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let done = Mutex<[String]?>(nil)

    init(ingest: String, publish: String, tag: String) {
        Thread.detachNewThread { [self] in
            var acknowledged: [String] = []
            if let client = try? ZMQClient(ingest: ingest, publish: publish) {
                var n = 0
                while !stopping.load(ordering: .relaxed) {
                    n += 1
                    _ = try? client.push.send([Array("notes".utf8), Array(newEvents(5, tag: "\(tag)\(n)").body.utf8)], wait: false)
                    if (try? zmqPoll([client.sub], timeout: .milliseconds(5)))?.first == true {
                        while let frames = try? client.sub.receive(wait: false), frames.count == 2 {
                            guard String(decoding: frames[0], as: UTF8.self) == "notes", let delta = try? JSONParser.parse(frames[1]),
                                  case .array(let events)? = delta["events"]
                            else { continue }
                            acknowledged += events.compactMap { $0["id"]?.stringValue }
                        }
                    }
                }
                client.close()
            }
            done.withLock { $0 = acknowledged }
        }
    }

    /// Stops pushing. - Returns: the ids seen in deltas.
    func stop() async -> [String] {
        stopping.store(true, ordering: .relaxed)
        while true {
            if let ids = done.withLock({ $0 }) { return ids }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// kill -9 at random moments under mixed load: HTTP clients, a ZeroMQ device, and a peer
/// replicating both ways. `LATERBASE_SOAK_CYCLES` sets the cycles (10 in the suite; `ops/soak.sh`
/// runs 100), `LATERBASE_SOAK_SEED` repeats a run.
@Suite("kill -9 soak", .serialized)
struct SoakTests {
    static var cycles: Int { ProcessInfo.processInfo.environment["LATERBASE_SOAK_CYCLES"].flatMap(Int.init) ?? 10 }

    @Test func killedAtRandomMomentsUnderMixedLoadLosesNothingAcknowledged() async throws {
        let seed = ProcessInfo.processInfo.environment["LATERBASE_SOAK_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        var random = SeededGenerator(seed: seed)
        let b = try await ClusterNode("soak-b")
        let a = try await ClusterNode("soak-a", peers: [b])
        var acknowledged: Set<String> = []
        var acknowledgedByB: Set<String> = []
        var viaZeroMQ = 0
        let started = ContinuousClock.now
        for cycle in 0..<Self.cycles {
            let node = try await a.http.get("/node").json
            guard let ingest = node["ingest"]?.stringValue, let publish = node["publish"]?.stringValue else {
                Issue.record("cycle \(cycle): /node has no ZeroMQ endpoints: \(node)")
                return
            }
            let device = ZMQLoad(ingest: ingest, publish: publish, tag: "z\(cycle)-")
            let onA = Acknowledged(), onB = Acknowledged()
            let killAfter = Duration.milliseconds(Int.random(in: 100...900, using: &random))
            // The clients go on past the kill: it lands in the middle of requests.
            let runFor = killAfter + .milliseconds(200)
            async let loadA: Void = load(a.http, clients: 4, acknowledged: onA, stopAfter: killAfter, runFor: runFor, requestTimeout: .milliseconds(500))
            async let loadB: Void = load(b.http, clients: 1, acknowledged: onB, stopAfter: killAfter, runFor: runFor, requestTimeout: .milliseconds(500))
            try await Task.sleep(for: killAfter)
            await a.stop(SIGKILL)
            let fromDevice = await device.stop()
            await loadA
            await loadB
            acknowledged.formUnion(onA.all)
            acknowledged.formUnion(fromDevice)
            viaZeroMQ += fromDevice.count
            acknowledgedByB.formUnion(onB.all)
            try await a.start()

            // The store opens; every event acknowledged so far is there, once; no origin has a gap.
            #expect(try await a.http.get("/healthz").status == 200, "cycle \(cycle)")
            let (events, head) = try await a.http.allEvents("notes")
            let ids = events.compactMap { $0["id"]?.stringValue }
            #expect(Set(ids).count == ids.count, "cycle \(cycle): an event stored twice")
            let lost = acknowledged.subtracting(ids)
            #expect(lost.isEmpty, "cycle \(cycle) (seed \(seed)): \(lost.count) acknowledged events lost, e.g. \(lost.prefix(3))")
            var perOrigin: [String: Int] = [:]
            for e in events { perOrigin[e["origin"]?.stringValue ?? "?", default: 0] += 1 }
            let counted = perOrigin.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
            #expect(counted == head, "cycle \(cycle): the head is not the count of events per origin")
        }
        #expect(viaZeroMQ > 0, "the ZeroMQ device saw no delta: the soak did not exercise ingest")
        // After the last restart the two converge, and each holds what the other acknowledged.
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(60))
        let onB = Set(try await b.http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
        #expect(acknowledged.isSubset(of: onB))
        let onA = Set(try await a.http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
        #expect(acknowledgedByB.isSubset(of: onA))
        print("soak: \(Self.cycles) kill -9 cycles, \(acknowledged.count) events acknowledged by the killed node "
            + "(HTTP responses and deltas seen by a ZeroMQ device; \(viaZeroMQ) ids in deltas), \(acknowledgedByB.count) by its peer, "
            + "lost \(acknowledged.subtracting(onA).count), seed \(seed), \(ContinuousClock.now - started)")
    }
}
