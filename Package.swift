// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "vnic",
    products: [
        .library(name: "NICCore", targets: ["NICCore"]),
        .library(name: "PCNet", targets: ["PCNet"]),
        .library(name: "E1000", targets: ["E1000"]),
        .library(name: "VirtioNet", targets: ["VirtioNet"]),
        .library(name: "NetBackend", targets: ["NetBackend"]),
        .library(name: "NICHarness", targets: ["NICHarness"]),
        .library(name: "VNIC", type: .static, targets: ["VNIC"]),
        .executable(name: "vnic", targets: ["vnic"]),
        .executable(name: "FuzzCards", targets: ["FuzzCards"]),
        .executable(name: "FuzzNAT", targets: ["FuzzNAT"]),
    ],
    targets: [
        .target(name: "CNICAccel"),
        .target(name: "NICCore", dependencies: ["CNICAccel"], swiftSettings: strict),
        .target(name: "PCNet", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "E1000", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "VirtioNet", dependencies: ["NICCore"], swiftSettings: strict),
        .target(name: "CNetShims"),
        .target(name: "NetBackend", dependencies: ["NICCore", "CNetShims"], swiftSettings: strict),
        .target(
            name: "NICHarness",
            dependencies: ["NICCore", "PCNet", "E1000", "VirtioNet", "NetBackend"],
            swiftSettings: strict
        ),
        .target(name: "CVNIC"),
        .target(name: "VNIC", dependencies: ["CVNIC", "NICCore", "NICHarness", "NetBackend"], swiftSettings: strict),
        .executableTarget(
            name: "vnic",
            dependencies: ["NICCore", "PCNet", "NetBackend", "NICHarness"],
            swiftSettings: strict
        ),
        .executableTarget(name: "FuzzCards", dependencies: ["NICHarness"], swiftSettings: strict),
        .executableTarget(name: "FuzzNAT", dependencies: ["NICCore", "NetBackend"], swiftSettings: strict),
        .testTarget(name: "NICCoreTests", dependencies: ["NICCore"], swiftSettings: strict),
        .testTarget(name: "PCNetTests", dependencies: ["PCNet", "NICHarness"], swiftSettings: strict),
        .testTarget(name: "E1000Tests", dependencies: ["E1000", "NICCore", "NICHarness"], swiftSettings: strict),
        .testTarget(name: "VirtioNetTests", dependencies: ["VirtioNet", "NICCore", "NICHarness"], swiftSettings: strict),
        .testTarget(name: "NetBackendTests", dependencies: ["NetBackend", "NICCore"], swiftSettings: strict),
        .testTarget(name: "NICHarnessTests", dependencies: ["NICHarness"], swiftSettings: strict),
        .testTarget(name: "VNICTests", dependencies: ["VNIC", "CVNIC", "NICHarness"], swiftSettings: strict),
        .testTarget(name: "RealGuestTests", dependencies: ["NICHarness"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
