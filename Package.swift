// swift-tools-version:5.9
import PackageDescription

// The shim (CShim/ → libheapgate.so) is built by the Makefile, never by SwiftPM:
// linking it into the CLI would give the CLI a second, disconnected copy of its state.
let package = Package(
    name: "heapgate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "heapgate", targets: ["heapgate"]),
        .library(name: "HeapGate", targets: ["HeapGate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibdw",
            pkgConfig: "libdw",
            providers: [.apt(["libdw-dev", "libelf-dev"])]
        ),
        .systemLibrary(name: "CLinux"),
        .target(
            name: "HeapGate",
            dependencies: ["CLibdw", "CLinux"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .executableTarget(
            name: "heapgate",
            dependencies: [
                "HeapGate",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "HeapGateTests",
            dependencies: ["HeapGate"]
        ),
    ]
)
