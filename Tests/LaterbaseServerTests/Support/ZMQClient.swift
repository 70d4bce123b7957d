import Foundation
import LaterbaseCore
import LaterbaseSync
import ZeroMQ

/// A device's side of the ZeroMQ contract, for tests: a PUSH socket on a node's ingest and a SUB
/// socket on its publish endpoint, both owned by the test's thread.
final class ZMQClient: @unchecked Sendable {
    let context: ZMQContext
    let push: ZMQSocket
    let sub: ZMQSocket

    /// - Parameter curve: the node's public key and the key pair to present, for a node with credentials.
    init(ingest: String, publish: String, curve: (server: String, pair: CurveKeyPair)? = nil) throws {
        context = try ZMQContext()
        push = try context.socket(.push)
        sub = try context.socket(.sub)
        if let curve {
            try push.setCurveClient(serverKey: curve.server, keyPair: curve.pair)
            try sub.setCurveClient(serverKey: curve.server, keyPair: curve.pair)
        }
        try push.connect(ingest)
        try sub.subscribe("")
        try sub.connect(publish)
    }

    /// Sends a message of any number of frames.
    func send(_ frames: [String]) throws { try push.send(frames.map { Array($0.utf8) }) }

    /// Messages received within `timeout` until `done` says enough. Polls without blocking and
    /// sleeps between polls: a blocking poll would hold one of the cooperative pool's threads
    /// (two here), which the in-process servers of tests running beside it need.
    func receive(timeout: Duration, until done: ([(topic: String, body: JSON)]) -> Bool) async throws -> [(topic: String, body: JSON)] {
        var got: [(topic: String, body: JSON)] = []
        let deadline = ContinuousClock.now + timeout
        while !done(got) && ContinuousClock.now < deadline {
            guard try zmqPoll([sub], timeout: .zero)[0] else {
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            while let frames = try sub.receive(wait: false) {
                got.append((String(decoding: frames[0], as: UTF8.self), (try? JSONParser.parse(frames[1])) ?? .null))
            }
        }
        return got
    }

    /// Waits until the SUB socket's subscription has reached the publisher, by writing through
    /// `poke` until a delta comes back.
    func awaitSubscription(poke: () async throws -> Void) async throws {
        for _ in 0..<100 {
            try await poke()
            for _ in 0..<10 {
                if try zmqPoll([sub], timeout: .zero)[0] {
                    while try sub.receive(wait: false) != nil {}
                    return
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        throw ServerProcess.ProcessError(message: "the subscription never reached the publisher")
    }

    func close() {
        push.close()
        sub.close()
        context.terminate()
    }
}

/// `n` new events for `root` as one JSON array, with ids chosen by the client.
func newEvents(_ n: Int, aggregate: (Int) -> String = { "agg-\($0 % 7)" }, tag: String = "e") -> (body: String, ids: [String]) {
    var ids: [String] = []
    var items: [String] = []
    for i in 0..<n {
        let id = UUID().uuidString.lowercased()
        ids.append(id)
        items.append(#"{"id":"\#(id)","aggregate":"\#(aggregate(i))","type":"noted","data":{"\#(tag)":\#(i)}}"#)
    }
    return ("[" + items.joined(separator: ",") + "]", ids)
}
