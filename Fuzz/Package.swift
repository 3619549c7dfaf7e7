// swift-tools-version: 6.1
//
// libFuzzer targets for zlabel's parsers. A package of its own because each target calls libFuzzer's
// `LLVMFuzzerRunDriver` from `main.swift`, which links only when built with `-sanitize=fuzzer`; a plain
// `swift build` at the root must never see these targets. Build and run them with `run.sh` (see README.md).
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
    name: "fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../")
    ],
    targets: [
        // Declares libFuzzer's driver entry point; the symbol comes from the fuzzer runtime at link time.
        .target(name: "CFuzzDriver"),
        // Runs libFuzzer with a Swift closure as the test function.
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzDriver", .product(name: "NVList", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzNVList",
            dependencies: ["FuzzSupport", .product(name: "NVList", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzLabel",
            dependencies: ["FuzzSupport", .product(name: "ZLabel", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzPartitions",
            dependencies: ["FuzzSupport", .product(name: "ZLabel", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzMOS",
            dependencies: ["FuzzSupport", .product(name: "ZLabel", package: root)],
            swiftSettings: strict
        ),
        // The container parsers (DiskContainers): one target each, sharing the sparse input format.
        .target(
            name: "FuzzContainerSupport",
            dependencies: ["FuzzSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzQcow2",
            dependencies: ["FuzzSupport", "FuzzContainerSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzVMDK",
            dependencies: ["FuzzSupport", "FuzzContainerSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzVHD",
            dependencies: ["FuzzSupport", "FuzzContainerSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzVHDX",
            dependencies: ["FuzzSupport", "FuzzContainerSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzHTTPResponse",
            dependencies: ["FuzzSupport", .product(name: "HTTPWire", package: root)],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FuzzCompressedRaw",
            dependencies: ["FuzzSupport", "FuzzContainerSupport", .product(name: "DiskContainers", package: root)],
            swiftSettings: strict
        ),
    ]
)
