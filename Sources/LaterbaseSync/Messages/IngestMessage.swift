import LaterbaseCore

/// A message on the ingest socket, `[root, body]`, checked for shape before its body is read.
public struct IngestMessage: Sendable {
    /// The root frame as text (lossy for bytes that are not UTF-8: it is only named back).
    public let root: String
    /// The body: what `POST /e/{root}` takes.
    public let body: [UInt8]

    /// Checks the frames' shape.
    /// - Throws: `bad_request` for anything but two frames, with the root (first frame) kept
    ///   for the announcement where there is one.
    public init(frames: [[UInt8]]) throws(Refusal) {
        let root = frames.first.map { String(decoding: $0.prefix(Self.maxRootBytes), as: UTF8.self) } ?? ""
        guard frames.count == 2 else {
            throw Refusal(
                root: root, body: frames.count > 1 ? frames[1] : [],
                error: LaterbaseError(.badRequest, "a message has two frames, [root, body]; this one has \(frames.count)"))
        }
        self.root = root
        self.body = frames[1]
    }

    /// Longest root frame named back in an announcement (a root name is at most 64 bytes).
    static let maxRootBytes = 64

    /// A message refused for its shape: what to announce, and why.
    public struct Refusal: Error, Sendable {
        public let root: String
        public let body: [UInt8]
        public let error: LaterbaseError
    }
}
