// swift-tools-version: 6.1
//
// zlabel: read and rewrite ZFS vdev labels inside raw disk images and block devices, and turn such an
// image into an Amazon EC2 AMI.
//
// Modules are split by what they may touch (see README.md, "Architecture"):
//   NVList          XDR nvlist codec; knows nothing of ZFS
//   ZFSChecksum     label SHA-256 with the offset verifier, fletcher2/4
//   ZFSLabel        labels, uberblocks, configs, edit plans (pure: bytes in, values out)
//   DiskPartitions  MBR, GPT and SMI/VTOC tables (pure)
//   DiskContainers  qcow2, VMDK, VHD, VHDX and zstd/xz/gzip-compressed raw as virtual disks (pure: reads
//                   through a caller's positional reader, never opens a file)
//   RawIO           the only module that opens disk images and block devices: positional reads and writes,
//                   sizes, holes, read-ahead (swift-system's FileDescriptor; what differs between Linux, macOS
//                   and FreeBSD is in one file, ImageFile+Platform.swift)
//   ZFSImage        images and devices for the label side (through RawIO): vdev discovery, backups, edits
//   ZLabel          umbrella: everything above, and nothing that speaks HTTP
//   HTTPWire        HTTP/1.1 request heads and an incremental response reader (pure: bytes in, values out)
//   BlockHashing    SHA-256 of two or four messages side by side (CSHA256: the x86 SHA extensions), else
//                   swift-crypto one after another; the upload's block hashes
//   AWSCore, EBSUpload  SigV4, AWS configuration, HTTP (its own HTTP/1.1 client over sockets and the
//                   system's OpenSSL), EBS direct upload (product ZLabelEC2)
//   EC2AMI          RegisterImage, DescribeImages, CopyImage, launch permissions; waits (product ZLabelEC2)
//   EC2Publish      image -> edited labels -> snapshot -> AMI, the one place where both sides meet
//   CLISupport      what both executables share: running the command, errors to exit statuses
//   zlabel          the command line for labels; holds no logic and links no HTTP
//   zlabel-ec2      the EC2 commands, run by `zlabel ec2 …`
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "zlabel",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZLabel", targets: ["ZLabel"]),
        .library(name: "NVList", targets: ["NVList"]),
        .library(name: "DiskContainers", targets: ["DiskContainers"]),
        .library(name: "HTTPWire", targets: ["HTTPWire"]),
        .library(name: "BlockHashing", targets: ["BlockHashing"]),
        .library(name: "ZLabelEC2", targets: ["AWSCore", "EBSUpload", "EC2AMI", "EC2Publish"]),
        .executable(name: "zlabel", targets: ["zlabel"]),
        .executable(name: "zlabel-ec2", targets: ["zlabel-ec2"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: label side (no HTTP anywhere below ZLabel)
        .target(name: "NVList", swiftSettings: strict),
        .target(
            name: "ZFSChecksum",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(name: "ZFSLabel", dependencies: ["NVList", "ZFSChecksum"], swiftSettings: strict),
        .target(name: "DiskPartitions", swiftSettings: strict),
        .target(name: "BootTargets", swiftSettings: strict),
        .target(
            name: "RawIO",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZMA", providers: [.apt(["liblzma-dev"])]),
        .target(name: "DiskContainers", dependencies: ["CZlib", "CZstd", "CLZMA"], swiftSettings: strict),
        .target(name: "ZFSMOS", dependencies: ["NVList", "ZFSChecksum", "ZFSLabel", "CZlib"], swiftSettings: strict),
        .target(
            name: "ZFSImage",
            dependencies: [
                "ZFSLabel", "DiskPartitions", "DiskContainers", "RawIO",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ZLabel",
            dependencies: ["NVList", "ZFSChecksum", "ZFSLabel", "DiskPartitions", "BootTargets", "ZFSImage", "ZFSMOS"],
            swiftSettings: strict
        ),

        // MARK: EC2 side
        .target(name: "HTTPWire", swiftSettings: strict),
        // SHA-256 of several blocks side by side: the C kernel (x86 SHA extensions) and its Swift side.
        .target(name: "CSHA256"),
        .target(
            name: "BlockHashing",
            dependencies: ["CSHA256", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "AWSCore",
            dependencies: [
                "COpenSSL", "HTTPWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CXXHash", providers: [.apt(["libxxhash-dev"])]),
        .target(
            name: "EBSUpload",
            dependencies: [
                "AWSCore", "BlockHashing", "CXXHash", "DiskContainers", "RawIO",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EC2AMI",
            dependencies: ["AWSCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "EC2Publish",
            dependencies: ["ZLabel", "EBSUpload", "EC2AMI", "AWSCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),

        // MARK: command line
        .target(
            name: "CLISupport",
            dependencies: ["ZLabel", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "zlabel",
            dependencies: ["ZLabel", "CLISupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "zlabel-ec2",
            dependencies: [
                "ZLabel", "CLISupport", "AWSCore", "EBSUpload", "EC2AMI", "EC2Publish",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // MARK: tests
        .target(name: "TestSupport", dependencies: ["ZLabel"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "NVListTests", dependencies: ["NVList"], swiftSettings: strict),
        .testTarget(name: "ZFSChecksumTests", dependencies: ["ZFSChecksum"], swiftSettings: strict),
        .testTarget(
            name: "BlockHashingTests",
            dependencies: ["BlockHashing", "CSHA256", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(name: "ZFSLabelTests", dependencies: ["ZFSLabel", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "DiskPartitionsTests", dependencies: ["DiskPartitions"], swiftSettings: strict),
        .testTarget(name: "BootTargetsTests", dependencies: ["BootTargets"], swiftSettings: strict),
        .testTarget(name: "DiskContainersTests", dependencies: ["DiskContainers", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "RawIOTests", dependencies: ["RawIO"], swiftSettings: strict),
        .testTarget(name: "ZFSImageTests", dependencies: ["ZFSImage", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ZFSMOSTests", dependencies: ["ZFSMOS", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "AWSCoreTests", dependencies: ["AWSCore", "HTTPWire", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Vectors"], swiftSettings: strict),
        .target(
            name: "EC2TestSupport", dependencies: ["EBSUpload", "AWSCore"], path: "Tests/EC2TestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "EBSUploadTests",
            dependencies: ["BlockHashing", "EBSUpload", "AWSCore", "EC2TestSupport", "zlabel", "zlabel-ec2"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EC2AMITests",
            dependencies: ["EC2AMI", "EBSUpload", "AWSCore", "EC2TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EC2PublishTests",
            dependencies: [
                "EC2Publish", "EBSUpload", "EC2AMI", "AWSCore", "ZLabel", "DiskContainers", "TestSupport",
                "EC2TestSupport", "zlabel", "zlabel-ec2", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ZLabelTests", dependencies: ["ZLabel", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "CLITests", dependencies: ["zlabel", "TestSupport"], swiftSettings: strict),
    ]
)
