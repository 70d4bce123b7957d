import Foundation
@testable import LaterbaseSync
import Synchronization
import Testing

/// The thread every socket-owning part runs on (ingest, ZAP, relays, peer links): what `/healthz`
/// hears of it.
@Suite("Socket threads")
struct SocketThreadTests {
    /// Waits (on this test's own thread, off the pool) until `condition` holds or 5 s pass.
    func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline { usleep(1000) }
        return condition()
    }

    @Test("a loop that returns unasked has failed, with its reason or without one; one stopped on request has not")
    func failures() {
        let failing = SocketThread(name: "test-failing")
        failing.start { failing.fail("the socket failed: EBADF") }
        #expect(eventually { failing.failure != nil })
        #expect(failing.failure == "the socket failed: EBADF")

        let returning = SocketThread(name: "test-returning")
        returning.start {}
        #expect(eventually { returning.failure != nil })
        #expect(returning.failure == "its loop returned")

        let looping = SocketThread(name: "test-looping")
        let turns = Atomic<Int>(0)
        looping.start {
            while !looping.isStopping { turns.add(1, ordering: .relaxed); usleep(100) }
        }
        let turned = eventually { turns.load(ordering: .relaxed) > 0 }
        #expect(turned)
        #expect(looping.failure == nil, "running")
        #expect(looping.stop())
        #expect(looping.failure == nil, "stopped when asked")
        #expect(looping.stop(), "a second stop returns at once")
    }

    @Test("a thread stopped before it started never runs, and its sockets stay the caller's")
    func stoppedBeforeStart() {
        let thread = SocketThread(name: "test-never")
        #expect(!thread.stop())
        let ran = Atomic<Bool>(false)
        thread.start { ran.store(true, ordering: .relaxed) }
        usleep(20_000)
        let didRun = ran.load(ordering: .relaxed)
        #expect(!didRun)
        #expect(thread.failure == nil)
    }

    @Test("stop() awaited returns once the loop has returned, with no thread blocked; before start it says so")
    func stoppedAsync() async {
        let thread = SocketThread(name: "test-async")
        let ended = Atomic<Bool>(false)
        thread.start {
            while !thread.isStopping { usleep(1000) }
            usleep(50_000)  // closing its sockets takes a while
            ended.store(true, ordering: .relaxed)
        }
        let stopped = await thread.stop()
        let returned = ended.load(ordering: .relaxed)
        #expect(stopped && returned, "stop() returned before the loop had")
        #expect(thread.failure == nil)
        #expect(await thread.stop(), "again: at once")
        let never = SocketThread(name: "test-async-never")
        #expect(await never.stop() == false)
    }
}
