// swift-tools-version: 6.1
//
// Benchmarks for zlabel, in a package of their own so that the root package's build and tests never
// resolve or build the benchmark stack (package-benchmark and its dependencies) or link libnvpair.
// Run from the repository root: `swift package --package-path Benchmarks benchmark` (see README.md).
import Foundation
import PackageDescription

// A path dependency is identified by its folder name, and a clone may live in a folder of any name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        // Without the MallocInterposer trait the default RuntimeInterposer trait pulls in a package that
        // is not needed here (and not in every package mirror).
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The baseline of the side-by-side SHA-256 benchmarks (the root package depends on it too).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // libnvpair (ZFS's own nvlist library, from libzfslinux-dev), the baseline for the codec benchmarks.
        // Its headers live under /usr/include/libzfs and /usr/include/libspl; only CNVPair.c sees them.
        .target(
            name: "CNVPair",
            path: "Sources/CNVPair",
            cSettings: [.unsafeFlags(["-I/usr/include/libzfs", "-I/usr/include/libspl"])],
            linkerSettings: [.linkedLibrary("nvpair")]
        ),
        // Loads label config areas out of the compressed fixture images.
        .target(
            name: "BenchmarkFixtures",
            dependencies: [.product(name: "NVList", package: root)],
            path: "Sources/BenchmarkFixtures",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "NVListBenchmarks",
            dependencies: [
                "CNVPair", "BenchmarkFixtures",
                .product(name: "NVList", package: root),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/NVListBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "ChecksumBenchmarks",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "ZLabel", package: root),
                .product(name: "BlockHashing", package: root),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/ChecksumBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
