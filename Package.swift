// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "laterbase",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Laterbase", targets: ["LaterbaseServer", "LaterbaseSync", "LaterbaseCore"]),
        .library(name: "LaterbaseCore", targets: ["LaterbaseCore"]),
        .library(name: "LaterbaseSync", targets: ["LaterbaseSync"]),
        .library(name: "LMDB", targets: ["LMDB"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .executable(name: "laterbase", targets: ["laterbase"]),
        .executable(name: "laterbase-bench", targets: ["LaterbaseBench"]),
        .executable(name: "laterbase-fuzz", targets: ["LaterbaseFuzz"]),
        .executable(name: "laterbase-profile", targets: ["LaterbaseProfile"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // C libraries from Debian: liblmdb-dev and libzmq3-dev.
        .systemLibrary(name: "CLMDB", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZMQ", providers: [.apt(["libzmq3-dev"])]),

        // Where a thread the runtime owns sleeps: one lock-and-condition (ThreadLock) and the one
        // queue (WorkQueue) that hands work to such threads. Nothing else in the runtime blocks.
        .target(name: "Blocking", swiftSettings: swiftSettings),
        // A thin, typed Swift wrapper over LMDB.
        .target(name: "LMDB", dependencies: ["CLMDB", "Blocking"], swiftSettings: swiftSettings),
        // A thin Swift wrapper over libzmq: context, sockets, multipart messages, poll.
        .target(name: "ZeroMQ", dependencies: ["CZMQ"], swiftSettings: swiftSettings),

        // Clock, dots, version vectors, events, schemas, the store and its single writer.
        .target(
            name: "LaterbaseCore",
            dependencies: [
                "Blocking",
                "LMDB",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // ZeroMQ ingest, delta fan-out, replication with peers, and the edge-device API.
        .target(
            name: "LaterbaseSync",
            dependencies: [
                "Blocking",
                "LaterbaseCore",
                "ZeroMQ",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),

        // HTTP API, metrics endpoint and service wiring: what an application calls to serve.
        .target(
            name: "LaterbaseServer",
            dependencies: [
                "LaterbaseCore",
                "LaterbaseSync",
                "ZeroMQ",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // Compiled into the binary (no resource bundle to ship beside it): GET /openapi.json
            // and the console's files.
            resources: [
                .embedInCode("Resources/openapi.json"),
                .embedInCode("Console/index.html"), .embedInCode("Console/console.js"), .embedInCode("Console/console.css"),
            ],
            swiftSettings: swiftSettings
        ),

        // The supply-chain demo application: shipments and inventory.
        .target(name: "LaterbaseDemo", dependencies: ["LaterbaseCore"], swiftSettings: swiftSettings),

        .executableTarget(
            name: "laterbase",
            dependencies: [
                "LaterbaseCore",
                "LaterbaseDemo",
                "LaterbaseServer",
                "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // The README's library example.
        .executableTarget(
            name: "PalletsExample",
            dependencies: [
                "LaterbaseServer", "LaterbaseCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),

        .executableTarget(
            name: "LaterbaseBench",
            dependencies: [
                "LMDB",
                "LaterbaseSync",
                "ZeroMQ",
                "LaterbaseDemo",
                "LaterbaseServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The writer alone under a synchronous main, for valgrind's instruction counts (ops/profile-writer.sh).
        .executableTarget(name: "LaterbaseProfile", dependencies: ["Blocking", "LaterbaseCore", "LaterbaseDemo"], swiftSettings: swiftSettings),

        // libFuzzer targets (ops/fuzz.sh builds them with -sanitize=fuzzer,address -D FUZZING);
        // built plainly, a corpus replayer.
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "LaterbaseFuzz", dependencies: ["CLibFuzzer", "LaterbaseCore", "LaterbaseSync", "LaterbaseDemo", "LMDB"], swiftSettings: swiftSettings),

        .testTarget(name: "BlockingTests", dependencies: ["Blocking"], swiftSettings: swiftSettings),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"], swiftSettings: swiftSettings),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: swiftSettings),
        .testTarget(name: "LaterbaseSyncTests", dependencies: ["LaterbaseSync", "LaterbaseCore", "ZeroMQ"], swiftSettings: swiftSettings),
        .testTarget(
            name: "LaterbaseCoreTests",
            dependencies: [
                "LaterbaseCore",
                "LaterbaseDemo",
                "LMDB",
                "PalletsExample",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LaterbaseServerTests",
            dependencies: [
                "LaterbaseServer",
                "LaterbaseSync",
                "ZeroMQ",
                "LaterbaseDemo",
                "laterbase",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
