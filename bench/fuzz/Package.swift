// swift-tools-version:6.0
// The libFuzzer harness of the ONNX loader, a package of its own because its
// executable has no `main` (libFuzzer supplies it) and must be built with
// `--sanitize=fuzzer`, which the main package's `swift test` would not use.
// Build and run it with bench/fuzz_onnx.sh.
import PackageDescription

let package = Package(
    name: "aimetcle-fuzz",
    dependencies: [.package(name: "aimetcle", path: "../..")],
    targets: [
        .executableTarget(
            name: "FuzzOnnx",
            dependencies: [
                .product(name: "AimetCore", package: "aimetcle"),
                .product(name: "aimetcle", package: "aimetcle"),
            ]
        ),
    ]
)
