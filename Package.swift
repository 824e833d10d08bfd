// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "vnic",
    products: [
        .library(name: "NICCore", targets: ["NICCore"]),
        .library(name: "PCNet", targets: ["PCNet"]),
        .library(name: "E1000", targets: ["E1000"]),
        .library(name: "VirtioNet", targets: ["VirtioNet"]),
        .library(name: "NetBackend", targets: ["NetBackend"]),
        .library(name: "NICCards", targets: ["NICCards"]),
        .library(name: "NICTrace", targets: ["NICTrace"]),
        .library(name: "NICHarness", targets: ["NICHarness"]),
        .library(name: "VNIC", type: .static, targets: ["VNIC"]),
        .executable(name: "vnic", targets: ["vnic"]),
        .executable(name: "FuzzCards", targets: ["FuzzCards"]),
        .executable(name: "FuzzNAT", targets: ["FuzzNAT"]),
        .executable(name: "FuzzAttachments", targets: ["FuzzAttachments"]),
    ],
    targets: [
        .target(name: "CNICAccel"),
        .target(name: "NICCore", dependencies: ["CNICAccel"], swiftSettings: strict),
        .target(name: "PCNet", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "E1000", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "VirtioNet", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "CNetShims"),
        .target(name: "NetBackend", dependencies: ["NICCore", "CNetShims"], swiftSettings: strict),
        .target(name: "NICCards", dependencies: ["NICCore", "PCNet", "E1000", "VirtioNet"], swiftSettings: strict),
        .target(name: "NICTrace", dependencies: ["NICCore", "NICCards"], swiftSettings: strict),
        .target(
            name: "NICHarness",
            dependencies: ["NICCore", "PCNet", "E1000", "VirtioNet", "NetBackend", "NICCards", "NICTrace"],
            swiftSettings: strict
        ),
        .target(name: "CVNIC"),
        // The C library: production modules only, never NICHarness (ModuleRuleTests and the nm check hold it).
        .target(
            name: "VNIC", dependencies: ["CVNIC", "NICCore", "NICCards", "NICTrace", "NetBackend"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "vnic",
            dependencies: ["NICCore", "PCNet", "NetBackend", "NICCards", "NICTrace", "NICHarness"],
            swiftSettings: strict
        ),
        .executableTarget(name: "FuzzCards", dependencies: ["NICHarness"], swiftSettings: strict),
        .executableTarget(name: "FuzzNAT", dependencies: ["NICCore", "NetBackend"], swiftSettings: strict),
        .executableTarget(name: "FuzzAttachments", dependencies: ["NICCore", "NetBackend"], swiftSettings: strict),
        // What the test targets share: RAM and interrupt doubles, the repository root, the subprocess runner.
        .target(name: "NICTestSupport", dependencies: ["NICCore"], path: "Tests/NICTestSupport", swiftSettings: strict),
        .testTarget(name: "NICCoreTests", dependencies: ["NICCore", "NICTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "NICCardsTests", dependencies: ["NICCards", "NICCore", "NICTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "NICTraceTests", dependencies: ["NICTrace", "NICCards", "NICCore"], swiftSettings: strict),
        .testTarget(
            name: "PCNetTests", dependencies: ["PCNet", "NICCards", "NICTrace", "NICHarness"], swiftSettings: strict),
        .testTarget(name: "E1000Tests", dependencies: ["E1000", "NICCore", "NICHarness"], swiftSettings: strict),
        .testTarget(
            name: "VirtioNetTests", dependencies: ["VirtioNet", "NICCore", "NICHarness"], swiftSettings: strict),
        .testTarget(
            name: "NetBackendTests", dependencies: ["NetBackend", "NICCore", "NICTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "NICHarnessTests", dependencies: ["NICHarness", "NICCards", "NICTrace", "NICTestSupport"],
            swiftSettings: strict),
        .testTarget(name: "vnicTests", dependencies: ["NetBackend", "NICTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "VNICTests", dependencies: ["VNIC", "CVNIC", "NICCards", "NICTrace", "NICHarness", "NICTestSupport"],
            swiftSettings: strict),
        .testTarget(name: "RealGuestTests", dependencies: ["NICHarness", "NICTestSupport"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
