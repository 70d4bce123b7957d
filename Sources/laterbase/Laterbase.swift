import ArgumentParser

@main
struct Laterbase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laterbase",
        abstract: "A fast, highly available event store for supply chain and logistics.",
        discussion: """
            `serve` runs a node with the supply-chain demo roots (shipments, inventory) and any \
            schema-less roots you name with --root, over the HTTP API of the wire contract, with \
            a console at /console. The other commands operate one: health checks, statistics, \
            backups, exports and credentials (README.md, "Operations runbook").
            """,
        subcommands: [
            Serve.self, CredentialsCommand.self, HealthCommand.self, StatsCommand.self, BackupCommand.self, RestoreCommand.self,
            ExportCommand.self, ImportCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}
