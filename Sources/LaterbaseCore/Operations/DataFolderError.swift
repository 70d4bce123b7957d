/// Why an operation on a data folder failed: taking its lock, a backup, a restore. The operator's
/// problem, told to the operator (the CLI's message, an embedding app's `catch`), never a
/// client's refusal, so it is not a ``LaterbaseError``.
public struct DataFolderError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Another node holds the folder (in this process or another).
        case inUse
        /// The folder holds no store where one was expected.
        case notAStore
        /// A restore's target holds a store already.
        case holdsAStore
        /// The file is not a backup this build reads.
        case notABackup
        /// An argument the operation cannot use (a replica id, say).
        case invalidArgument
        /// The disk refused to take or sync what was written.
        case noSpace
        /// A file could not be opened, read, renamed or copied.
        case io
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
