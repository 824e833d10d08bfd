import NICCore
import NICHarness
import Testing

@testable import VirtioNet

@Suite("virtio-net PCI function and transports")
struct VirtioProbeTests {
    @Test func identityIsTheTransitionalNetDevice() throws {
        let bench = try VirtioBench()
        #expect(bench.card.configRead(offset: 0x00, width: 4) == 0x1000_1AF4)
        #expect(bench.card.configRead(offset: 0x08, width: 4) >> 8 == 0x02_0000)
        #expect(bench.card.configRead(offset: 0x2C, width: 2) == 0x1AF4)
        #expect(bench.card.configRead(offset: 0x2E, width: 2) == 1)
        #expect(bench.card.configRead(offset: 0x3D, width: 1) == 1)
        #expect(bench.card.modelName == "virtio")
    }

    @Test func barsSizeAsDocumented() throws {
        let bench = try VirtioBench()
        for (offset, expected) in [(0x10, UInt32(0xFFFF_FFC1)), (0x14, 0xFFFF_F000), (0x20, 0xFFFF_C00C)] {
            bench.card.configWrite(offset: offset, width: 4, value: 0xFFFF_FFFF)
            #expect(bench.card.configRead(offset: offset, width: 4) == expected, "BAR at \(offset)")
        }
        bench.card.configWrite(offset: 0x24, width: 4, value: 0xFFFF_FFFF)
        #expect(bench.card.configRead(offset: 0x24, width: 4) == 0xFFFF_FFFF)
    }

    @Test func modernCapabilitiesAreFoundByWalkingTheList() throws {
        let bench = try VirtioBench()
        let caps = bench.virtioCapabilities()
        #expect(caps[1]?.bar == 4 && caps[1]?.offset == 0x0000)
        #expect(caps[2]?.bar == 4 && caps[2]?.offset == 0x3000)
        #expect(caps[3]?.bar == 4 && caps[3]?.offset == 0x1000)
        #expect(caps[4]?.bar == 4 && caps[4]?.offset == 0x2000)
        #expect(caps[5] != nil)
        let notify = try #require(caps[2])
        #expect(bench.card.configRead(offset: notify.capOffset + 16, width: 4) == 4, "notify_off_multiplier")
        #expect(bench.card.configRead(offset: notify.capOffset + 2, width: 1) == 20, "notify cap_len")
        let msix = try #require(bench.msixCapability())
        #expect(bench.card.configRead(offset: msix + 2, width: 2) & 0x7FF == 3, "4 vectors for one pair")
        #expect(bench.card.configRead(offset: msix + 4, width: 4) == 1, "table in BAR1 at 0")
        #expect(bench.card.configRead(offset: msix + 8, width: 4) == 0x801, "PBA in BAR1 at 0x800")
    }

    @Test func deviceConfigThroughBothInterfaces() throws {
        let bench = try VirtioBench(pairs: 4)
        let macBytes = (0..<6).map { UInt8(bench.modernRead(0x2000 + UInt64($0), 1)) }
        #expect(macBytes == bench.mac.bytes)
        #expect(bench.modernRead(0x2006, 2) & 1 == 1, "link up")
        #expect(bench.modernRead(0x2008, 2) == 4, "max_virtqueue_pairs")
        #expect(bench.modernRead(0x200A, 2) == 1500, "mtu")
        #expect(bench.modernRead(0x12, 2) == 9, "num_queues")
        // Legacy: config at 20 without MSI-X, at 24 with it.
        #expect((0..<6).map { UInt8(bench.legacyRead(20 + UInt64($0), 1)) } == bench.mac.bytes)
        bench.enableMSIX()
        #expect((0..<6).map { UInt8(bench.legacyRead(24 + UInt64($0), 1)) } == bench.mac.bytes)
        #expect(bench.legacyRead(0x14, 2) == 0xFFFF, "config vector, NO_VECTOR after reset")
    }

    @Test func legacyShowsOnlyTheLowFeatureBits() throws {
        let bench = try VirtioBench(pairs: 2)
        let legacy = UInt32(bench.legacyRead(0x00, 4))
        let modern = bench.modernDeviceFeatures()
        #expect(UInt64(legacy) == modern.rawValue & 0xFFFF_FFFF)
        #expect(modern.contains(.version1) && modern.contains(.packedRing) && modern.contains(.multiqueue))
        #expect(bench.legacyRead(0x0C, 2) == 256, "legacy queue size")
    }

    @Test func illegalWidthsReadAllOnesWithoutSideEffects() throws {
        let bench = try VirtioBench()
        #expect(bench.legacyRead(0x00, 2) == 0xFFFF)
        #expect(bench.legacyRead(0x12, 2) == 0xFFFF)
        #expect(bench.modernRead(0x14, 2) == 0xFFFF)
        #expect(bench.counter("bad_register_accesses") == 3)
    }
}

@Suite("virtio-net feature negotiation")
struct VirtioNegotiationTests {
    @Test func modernAcceptsAValidSet() throws {
        let bench = try VirtioBench()
        #expect(bench.negotiateModern([.version1, .mac, .checksum, .hostTSO4, .mergeableReceiveBuffers]))
        #expect(bench.card.negotiated.contains(.hostTSO4))
        #expect(bench.card.headerLength == 12)
    }

    static let invalid: [(String, VirtioFeatures)] = [
        ("HOST_TSO4 without CSUM", [.hostTSO4]),
        ("HOST_TSO6 without CSUM", [.hostTSO6]),
        ("HOST_UFO without CSUM", [.hostUFO]),
        ("HOST_ECN without TSO", [.checksum, .hostECN]),
        ("GUEST_TSO4 without GUEST_CSUM", [.guestTSO4]),
        ("GUEST_TSO6 without GUEST_CSUM", [.guestTSO6]),
        ("GUEST_UFO without GUEST_CSUM", [.guestUFO]),
        ("GUEST_ECN without GUEST_TSO", [.guestChecksum, .guestECN]),
        ("CTRL_RX without CTRL_VQ", [.controlReceive]),
        ("CTRL_VLAN without CTRL_VQ", [.controlVLAN]),
        ("GUEST_ANNOUNCE without CTRL_VQ", [.guestAnnounce]),
        ("MQ without CTRL_VQ", [.multiqueue]),
        ("CTRL_MAC_ADDR without CTRL_VQ", [.controlMACAddress]),
    ]

    @Test(arguments: invalid)
    func modernRefusesInvalidCombinations(_ name: String, _ features: VirtioFeatures) throws {
        let bench = try VirtioBench(pairs: 2)
        #expect(!bench.negotiateModern(features.union(.version1)), "\(name)")
        #expect(bench.counter("features_refused") == 1)
    }

    @Test func packedWithoutVersion1AndUnofferedBitsAreRefused() throws {
        let bench = try VirtioBench()
        #expect(!bench.negotiateModern([.packedRing]))
        #expect(!bench.negotiateModern([.version1, VirtioFeatures(rawValue: 1 << 40)]))
        #expect(!bench.negotiateModern([.mac]), "modern without VERSION_1")
        #expect(!bench.negotiateModern([.version1, .multiqueue, .controlQueue]), "MQ not offered with one pair")
    }

    @Test func legacyMasksDependentsInsteadOfRefusing() throws {
        let bench = try VirtioBench()
        let requested = VirtioFeatures([.hostTSO4, .mac, .controlReceive, .mergeableReceiveBuffers])
        _ = bench.startLegacy(UInt32(requested.rawValue))
        #expect(bench.card.negotiated == [.mac, .mergeableReceiveBuffers])
        #expect(bench.card.headerLength == 12)
        #expect(UInt32(bench.legacyRead(0x04, 4)) == UInt32(VirtioFeatures([.mac, .mergeableReceiveBuffers]).rawValue))
    }

    @Test func legacyHeaderIsTenBytesWithoutMergeableBuffers() throws {
        let bench = try VirtioBench()
        _ = bench.startLegacy(UInt32(VirtioFeatures.mac.rawValue))
        #expect(bench.card.headerLength == 10)
    }

    @Test func featuresAreFixedAfterFeaturesOK() throws {
        let bench = try VirtioBench()
        #expect(bench.negotiateModern([.version1, .mac]))
        bench.modernWrite(0x08, 4, 0)
        bench.modernWrite(0x0C, 4, VirtioFeatures.checksum.rawValue)
        #expect(bench.modernRead(0x0C, 4) == VirtioFeatures.mac.rawValue)
    }
}
