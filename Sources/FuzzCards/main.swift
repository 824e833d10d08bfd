// The libFuzzer entry point for every implemented card. Build it with
//   swift build --product FuzzCards --sanitize=fuzzer --sanitize=address --scratch-path .build-fuzz
// and run `.build-fuzz/debug/FuzzCards Fixtures/fuzz-corpus`; a plain `swift build` links it as an empty program.
import NICHarness

// swift-format-ignore: AlwaysUseLowerCamelCase
@c(LLVMFuzzerTestOneInput)
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzDecoder.runOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
