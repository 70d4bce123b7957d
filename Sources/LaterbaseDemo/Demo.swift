import LaterbaseCore

/// The demo application's roots.
public enum Demo {
    /// `shipments` and `inventory`, with typed schemas.
    public static let roots: [RootDefinition] = [.typed(Shipments.self), .typed(Inventory.self)]
}
