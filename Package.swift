// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "aimetcle",
    products: [
        // libaimetcle.so: the C ABI declared in Include/aimetcle.h.
        .library(name: "aimetcle", type: .dynamic, targets: ["CAPI"]),
        // The Swift core, for Swift users.
        .library(name: "AimetCore", targets: ["AimetCore"]),
        // The `aimetcle` command line (SwiftPM drops an executable product named
        // like the library product, so `make cli` copies it to build/aimetcle).
        .executable(name: "aimetcle-cli", targets: ["AimetCLI"]),
    ],
    dependencies: [
        // Without its default traits (Foundation stream helpers this package does not use),
        // SwiftProtobuf needs FoundationEssentials only, and Foundation with ICU stays out of the library.
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
    ],
    targets: [
        // MARK: - Core (pure Swift, no C-ABI concerns)
        // OpenBLAS's CBLAS (GEMM for the executor).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Element-wise kernels in C, built for baseline x86-64, AVX2 and AVX-512 and chosen at run time.
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(
            name: "AimetCore",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf"), "CBLAS", "CKernels"],
            exclude: ["ONNX/onnx.proto"]
        ),

        // MARK: - C ABI
        // The public header as a Clang module, so the @_cdecl layer shares its types.
        .systemLibrary(name: "CAimetABI", path: "Include"),
        .target(name: "CAPI", dependencies: ["AimetCore", "CAimetABI"]),

        // MARK: - Command line
        .executableTarget(
            name: "AimetCLI",
            dependencies: ["AimetCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/aimetcle-cli"
        ),

        // MARK: - Tests
        .testTarget(name: "AimetCoreTests", dependencies: ["AimetCore", "CKernels"], exclude: ["Fixtures"]),
    ]
)
