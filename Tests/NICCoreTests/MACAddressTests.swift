import NICCore
import Testing

@Suite struct MACAddressTests {
    @Test func parsesAndPrints() throws {
        let mac = try #require(MACAddress("52:54:00:12:34:56"))
        #expect(mac.rawValue == 0x5254_0012_3456)
        #expect(mac.bytes == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(mac.description == "52:54:00:12:34:56")
        #expect(MACAddress("52-54-00-12-34-56") == mac)
        #expect(MACAddress("AA:bb:0C:0d:EE:ff")?.description == "aa:bb:0c:0d:ee:ff")
        #expect(MACAddress(rawValue: 0x0200_0000_000A).description == "02:00:00:00:00:0a")
        #expect(MACAddress(rawValue: 0xFFFF_5254_0012_3456) == mac, "only the low 48 bits count")
        #expect(MACAddress(bytes: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]) == mac)
        #expect(MACAddress(mac.description) == mac, "round trip")
    }

    @Test(arguments: [
        "", "52:54:00:12:34", "52:54:00:12:34:56:78", "5:54:00:12:34:56", "52:54:00:12:34:567", "zz:54:00:12:34:56",
        "525400123456", "52:54:00-12:34:56", "52:54:00:12:34:", ":52:54:00:12:34", "52::54:00:12:34",
        "52:54:00:12:34:56 ", " 52:54:00:12:34:56", "52.54.00.12.34.56", "0x:54:00:12:34:56",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test(arguments: ["+2:54:00:12:34:56", "-0:54:00:12:34:56", "52:54:00:12:34:+6"])
    func rejectsSignedOctets(_ text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func groupAndLocalBits() throws {
        let unicast = try #require(MACAddress("00:1b:21:0a:0b:0c"))
        #expect(!unicast.isMulticast && !unicast.isBroadcast && !unicast.isLocallyAdministered)
        let multicast = try #require(MACAddress("01:00:5e:00:00:fb"))
        #expect(multicast.isMulticast && !multicast.isBroadcast && !multicast.isLocallyAdministered)
        #expect(MACAddress.broadcast.isMulticast && MACAddress.broadcast.isBroadcast)
        #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        let local = try #require(MACAddress("52:54:00:12:34:56"))
        #expect(local.isLocallyAdministered && !local.isMulticast)
        #expect(try #require(MACAddress("33:33:00:00:00:01")).isMulticast)
    }

    @Test func readsFromBuffers() {
        let bytes: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        bytes.withUnsafeBytes { buffer in
            #expect(MACAddress(in: buffer, at: 0) == .broadcast)
            #expect(MACAddress(in: buffer, at: 6) == MACAddress(rawValue: 0x5254_0012_3456))
            #expect(MACAddress(in: buffer, at: 7) == nil)
            #expect(MACAddress(in: buffer, at: -1) == nil)
            #expect(MACAddress(in: buffer, at: Int.max) == nil)
        }
        [UInt8]([1, 2, 3]).withUnsafeBytes { #expect(MACAddress(in: $0, at: 0) == nil) }
        #expect(MACAddress(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(MACAddress(bytes: [1, 2, 3, 4, 5, 6, 7]) == nil)
    }

    @Test func ordersByValue() throws {
        let low = try #require(MACAddress("00:00:00:00:00:01"))
        let high = try #require(MACAddress("00:00:00:00:01:00"))
        #expect(low < high)
        #expect([high, .broadcast, low].sorted() == [low, high, .broadcast])
    }
}
