// swift-tools-version: 6.1
//
// An outside user of zlabel: a package that depends on it by path, as a pipeline repository would depend on
// a release, and uses only its public API. CI builds and tests it (.ci/checks.d/20-example.sh), so a change
// that breaks the public API for such users fails there.
import Foundation
import PackageDescription

// A path dependency is identified by its folder name, and a clone may live in a folder of any name.
let zlabel = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "GoldenImage",
    platforms: [.macOS(.v15)],
    products: [.library(name: "GoldenImage", targets: ["GoldenImage"])],
    dependencies: [.package(path: "../..")],
    targets: [
        .target(
            name: "GoldenImage",
            dependencies: [.product(name: "ZLabel", package: zlabel)],
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("InternalImportsByDefault")]
        ),
        .testTarget(
            name: "GoldenImageTests",
            dependencies: ["GoldenImage", .product(name: "ZLabel", package: zlabel)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
