import ArgumentParser

@main
struct Laterbase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laterbase",
        abstract: "A fast, highly available event store for supply chain and logistics.",
        discussion: """
            Serves the supply-chain demo roots (shipments, inventory) and any schema-less roots you
            name with --root, over the HTTP API of the wire contract (see README.md).
            """,
        subcommands: [
            Serve.self, CredentialsCommand.self, HealthCommand.self, StatsCommand.self, BackupCommand.self, RestoreCommand.self,
            ExportCommand.self, ImportCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}
