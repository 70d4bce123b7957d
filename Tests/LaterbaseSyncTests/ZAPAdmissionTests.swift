import LaterbaseCore
@testable import LaterbaseSync
import Testing
import ZeroMQ

/// The ZAP handler's decisions (``ZAPAdmission``): how many ingest senders at once, in what order
/// the rest wait, what frees a place, and who may connect at all.
@Suite struct ZAPAdmissionTests {
    let t0 = ContinuousClock.now

    @Test func sendersOverTheLimitWaitInOrderAndAnAdmittedOneLeavingLetsTheNextIn() {
        var zap = ZAPAdmission<String>(maxSenders: 2)
        #expect(zap.asked("a", now: t0) == false)
        #expect(zap.asked("b", now: t0) == false)
        #expect(zap.asked("c", now: t0) == true, "the third is held behind the limit")
        #expect(zap.settle(now: t0).admit == ["a", "b"])
        #expect(zap.settle(now: t0).admit == [], "two admissions on their way count as taken")
        for fd: UInt32 in [7, 8] {
            zap.observed(.accepted, connection: fd)
            zap.observed(.handshakeSucceeded, connection: fd)
        }
        #expect(zap.admitted == 2 && zap.taken == 2 && zap.live == [7, 8])
        #expect(zap.settle(now: t0).admit == [])
        zap.observed(.disconnected, connection: 7)
        #expect(zap.admitted == 1)
        #expect(zap.settle(now: t0).admit == ["c"])
        #expect(zap.waiting == 0)
    }

    @Test func aConnectionThatEndsInItsHandshakeFreesNoPlace() {
        var zap = ZAPAdmission<String>(maxSenders: 1)
        _ = zap.asked("a", now: t0)
        #expect(zap.settle(now: t0).admit == ["a"])
        zap.observed(.accepted, connection: 3)
        zap.observed(.handshakeSucceeded, connection: 3)
        _ = zap.asked("b", now: t0)
        // A connection that never greeted: libzmq reports the failure, then its disconnection.
        zap.observed(.accepted, connection: 4)
        zap.observed(.handshakeFailedProtocol, connection: 4)
        zap.observed(.disconnected, connection: 4)
        #expect(zap.admitted == 1 && zap.live == [3])
        #expect(zap.settle(now: t0).admit == [], "b still waits: the admitted sender is connected")
        zap.observed(.disconnected, connection: 3)
        #expect(zap.settle(now: t0).admit == ["b"])
    }

    @Test func anAdmissionNeverReportedStopsHoldingItsPlace() {
        var zap = ZAPAdmission<String>(maxSenders: 1)
        _ = zap.asked("a", now: t0)
        #expect(zap.settle(now: t0).admit == ["a"])  // its connection went away before the answer
        _ = zap.asked("b", now: t0 + .seconds(1))
        #expect(zap.settle(now: t0 + .seconds(4)).admit == [])
        #expect(zap.settle(now: t0 + .seconds(6)).admit == ["b"])
    }

    @Test func aRequestHeldPastTheHandshakeTimeoutIsForgotten() {
        var zap = ZAPAdmission<String>(maxSenders: 1)
        _ = zap.asked("a", now: t0)
        _ = zap.settle(now: t0)
        zap.observed(.accepted, connection: 1)
        zap.observed(.handshakeSucceeded, connection: 1)
        _ = zap.asked("b", now: t0)
        #expect(zap.settle(now: t0 + .seconds(12)).admit == [])
        #expect(zap.waiting == 0, "libzmq closed b's connection; its sender reconnects and asks again")
        zap.observed(.disconnected, connection: 1)
        #expect(zap.settle(now: t0 + .seconds(12)).admit == [])
    }

    @Test func aSenderWaitingASecondIsWarnedOfAtMostEveryTenSeconds() {
        var zap = ZAPAdmission<String>(maxSenders: 0)
        _ = zap.asked("a", now: t0)
        #expect(zap.settle(now: t0 + .milliseconds(500)).warning == nil)
        let warned = zap.settle(now: t0 + .seconds(2)).warning
        #expect(warned?.waiting == 1 && warned?.admitted == 0)
        #expect(zap.settle(now: t0 + .seconds(5)).warning == nil)
        _ = zap.asked("b", now: t0 + .seconds(11))
        #expect(zap.settle(now: t0 + .seconds(13)).warning?.waiting == 1, "a expired; b has waited two seconds")
    }

    @Test func whoMayConnectIsThePrincipalWhoseKeyItPresents() throws {
        let device = try CurveKeyPair.generate(), reader = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let credentials = try Credentials(json: Array(#"""
            {"principals":[
              {"name":"truck-7","role":"device","token_sha256":"\#(SHA256.hex("a"))","origin":"truck-7","write":["notes"],"read":["notes"],"curve_public_key":"\#(device.publicKey)"},
              {"name":"board","role":"reader","token_sha256":"\#(SHA256.hex("b"))","read":["notes"],"curve_public_key":"\#(reader.publicKey)"}
            ]}
            """#.utf8))
        let access = Access(path: nil, credentials: credentials)
        func request(_ mechanism: String, _ key: CurveKeyPair?) -> ZAPRequest {
            ZAPRequest(frames: [Array("1.0".utf8), [1], Array("laterbase-ingest".utf8), Array("10.0.0.9".utf8), [], Array(mechanism.utf8)]
                + (key.map { [Z85.decode($0.publicKey)!] } ?? []))!
        }
        typealias Z = ZAPAdmission<Int>
        #expect(try Z.identify(request("CURVE", device), on: .ingest, access: access).get() == "truck-7")
        #expect(Z.identify(request("CURVE", reader), on: .ingest, access: access) == .failure(.init(reason: "forbidden", text: "board (reader) may not connect to ingest")))
        #expect(Z.identify(request("CURVE", stranger), on: .ingest, access: access) == .failure(.init(reason: "unknown_key", text: "no principal has this public key")))
        #expect(Z.identify(request("NULL", nil), on: .publish, access: access) == .failure(.init(reason: "mechanism", text: "CURVE is required")))
        // A node without credentials admits anyone, as no one in particular.
        #expect(try Z.identify(request("NULL", nil), on: .ingest, access: Access(path: nil, credentials: nil)).get() == "")
    }
}
