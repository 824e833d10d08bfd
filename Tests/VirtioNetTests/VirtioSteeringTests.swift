import NICCore
import NICHarness
import Testing

@testable import VirtioNet

@Suite("virtio-net receive steering")
struct VirtioSteeringTests {
    /// Linux's connect() takes even local ports first, so a guest's TCP flows to one server differ only in even
    /// ports. They must still spread over the pairs (a hash whose low bits follow the ports' parity put every one on
    /// the same pair in the real-guest tier).
    @Test(arguments: [2, 4])
    func flowsWithEvenPortsSpreadOverThePairs(pairs: Int) throws {
        let (bench, rx, _, control) = try VirtioMultiqueueTests().start(pairs: pairs)
        #expect(control.send(4, 0, [UInt8(pairs), 0]) == 0)
        var perPair = [Int](repeating: 0, count: pairs)
        for flow in 0..<64 {
            bench.receive(udpFlowFrame(to: bench.mac, sourcePort: UInt16(40_000 + 2 * flow)))
            for (pair, ring) in rx.enumerated() { perPair[pair] += ring.used().count }
            if flow % 16 == 15 {
                for ring in rx {
                    for _ in 0..<min(16, ring.freeDescriptors) { ring.add([(bench.allocate(2048), 2048, true)]) }
                }
            }
        }
        #expect(perPair.reduce(0, +) == 64)
        let fair = 64 / pairs
        #expect(perPair.allSatisfy { $0 >= fair / 2 && $0 <= fair * 3 / 2 }, "frames per pair: \(perPair)")
    }

    @Test func theHashIsAFunctionOfTheFlowOnly() {
        let frame = udpFlowFrame(to: MACAddress("52:54:00:12:34:56")!, sourcePort: 40_000)
        var other = frame
        other[other.count - 1] ^= 0xFF  // payload differs, same flow
        let a = frame.withUnsafeBytes { FlowHash.of($0) }
        let b = other.withUnsafeBytes { FlowHash.of($0) }
        #expect(a == b)
        #expect(a >= 0)
    }
}
