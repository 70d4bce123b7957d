import Foundation
import Testing
import ZeroMQ

@Suite("ZeroMQ bindings")
struct SocketTests {
    @Test("PUSH/PULL carries multipart messages whole, empty frames included, on a port chosen by `*`")
    func pushPull() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let pull = try context.socket(.pull)
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(pull.lastEndpoint)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let push = try context.socket(.push)
        try push.connect(endpoint)
        let big = [UInt8](repeating: 7, count: 1 << 20)
        try push.send([Array("root".utf8), [], big])
        try push.send([Array("second".utf8)])
        #expect(try zmqPoll([pull], timeout: .seconds(5)) == [true])
        let first = try #require(try pull.receive())
        #expect(first.count == 3 && first[0] == Array("root".utf8) && first[1].isEmpty && first[2] == big)
        let second = try #require(try pull.receive())
        #expect(second == [Array("second".utf8)])
        #expect(try pull.receive(wait: false) == nil)
        push.close()
        pull.close()
    }

    @Test("SUB gets only the prefixes it subscribed to; poll times out when nothing comes")
    func pubSub() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let pub = try context.socket(.pub)
        try pub.bind("tcp://127.0.0.1:*")
        let sub = try context.socket(.sub)
        try sub.subscribe("ship")
        try sub.connect(pub.lastEndpoint!)
        // A subscription takes a moment to reach the publisher: publish until the first arrives.
        var got: [[UInt8]]? = nil
        for _ in 0..<200 where got == nil {
            try pub.send([Array("inventory".utf8), Array("x".utf8)])
            try pub.send([Array("shipments".utf8), Array("y".utf8)])
            if try zmqPoll([sub], timeout: .milliseconds(10))[0] { got = try sub.receive() }
        }
        #expect(got == [Array("shipments".utf8), Array("y".utf8)])
        while let m = try sub.receive(wait: false) { #expect(m[0] == Array("shipments".utf8)) }
        let started = ContinuousClock.now
        #expect(try zmqPoll([sub], timeout: .milliseconds(50)) == [false])
        #expect(ContinuousClock.now - started >= .milliseconds(40))
        pub.close()
        sub.close()
    }

    @Test("a PUSH with no peer does not block when asked not to, and shutdown with unsent messages does not hang")
    func noPeerAndShutdown() throws {
        let context = try ZMQContext()
        let push = try context.socket(.push)
        try push.setImmediate(true)
        try push.connect("tcp://127.0.0.1:1")  // nothing listens there
        #expect(try push.send([Array("x".utf8)], wait: false) == false)
        let queued = try context.socket(.push)
        try queued.connect("tcp://127.0.0.1:1")
        _ = try queued.send([Array("y".utf8)], wait: false)  // queued to a pipe that never connects
        let started = ContinuousClock.now
        push.close()
        queued.close()
        context.shutdown()
        context.terminate()
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test("a bind to a port in use is a clear error")
    func bindError() throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let a = try context.socket(.pull)
        try a.bind("tcp://127.0.0.1:*")
        let b = try context.socket(.pull)
        #expect(throws: ZMQError.self) { try b.bind(a.lastEndpoint!) }
        a.close()
        b.close()
    }
}
