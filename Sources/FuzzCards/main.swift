// The libFuzzer entry point for every implemented card. Scripts/fuzz.sh builds it (release, libFuzzer and
// AddressSanitizer, in .build-fuzz) and runs it over .build-fuzz/corpus, seeded from Fixtures/traces; a plain
// `swift build` links it as an empty program.
import NICHarness

// swift-format-ignore: AlwaysUseLowerCamelCase
@c(LLVMFuzzerTestOneInput)
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzDecoder.runOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
