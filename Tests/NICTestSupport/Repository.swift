import Foundation

/// The repository root, found from this file's path.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The trace files in `Fixtures/traces/<subdirectory>`, sorted.
public func fixtureTraces(_ subdirectory: String = "") -> [URL] {
    let directory = repositoryRoot.appendingPathComponent("Fixtures/traces").appendingPathComponent(subdirectory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted().map { directory.appendingPathComponent($0) }
}

/// The shared pcap fixtures directory (`../shared/fixtures/pcaps` from the repository root), if it exists.
public func sharedPcapFixtures() -> URL? {
    let directory = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/pcaps")
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
    else { return nil }
    return directory
}

/// A path for a scratch file in the temporary directory, unique per call.
public func temporaryPath(_ suffix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("vnic-test-\(UUID().uuidString)-\(suffix)").path
}

/// Writes `text` to a fresh temporary file and returns its path.
public func temporaryFile(_ text: String, name: String = "trace") throws -> String {
    let path = NSTemporaryDirectory() + "vnic-\(name)-\(UUID().uuidString).trace"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The directory the test bundle was built into (`.build/debug`, say), where `swift build` puts the products.
public var buildProductsDirectory: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }

/// The built product `name` next to the test bundle (or up to two directories above it), if it was built.
public func builtProduct(_ name: String) -> URL? {
    var directory = buildProductsDirectory
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

/// The built `vnic` executable next to the test bundle, if it was built.
public func vnicExecutable() -> URL? {
    guard let url = builtProduct("vnic"), FileManager.default.isExecutableFile(atPath: url.path) else { return nil }
    return url
}
