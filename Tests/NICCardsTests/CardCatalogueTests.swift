import NICCards
import NICCore
import NICTestSupport
import Testing
import VirtioNet

@Suite("The card catalogue: models, options, limits and errors")
struct CardCatalogueTests {
    let mac = MACAddress("52:54:00:12:34:56")!

    func environment() -> CardEnvironment {
        CardEnvironment(memory: RAM(size: 4096), interruptLine: RecordingLine(), clock: ManualClock())
    }

    @Test(arguments: CardModel.implemented)
    func everyModelBuildsWithItsDefaults(_ model: CardModel) throws {
        let card = try model.make(macAddress: mac, environment: environment())
        #expect(card.modelName == model.rawValue)
        #expect(card.macAddress == mac)
        #expect(try CardModel(named: model.rawValue.uppercased()) == model)
    }

    @Test func theLimitsAreTheCardModulesOwn() throws {
        #expect(CardModel.virtio.queuePairLimit == VirtioNetCard.queuePairLimit)
        #expect(CardModel.virtio.mtuLimits == VirtioNetCard.mtuLimits)
        #expect(CardModel.e82540em.queuePairLimit == 1)
        #expect(CardModel.am79c973.mtuLimits == nil)
        // The largest accepted values build a card that reports them.
        let options = CardOptions(queuePairs: VirtioNetCard.queuePairLimit, mtu: VirtioNetCard.mtuLimits.upperBound)
        let card = try #require(
            try CardModel.virtio.make(macAddress: mac, environment: environment(), options: options)
                as? VirtioNetCard)
        #expect(card.maximumQueuePairs == VirtioNetCard.queuePairLimit)
        #expect(Int(card.mtu) == VirtioNetCard.mtuLimits.upperBound)
    }

    /// The `CardError` `body` throws, `nil` when it throws none (any other error fails the test).
    func error(_ body: () throws -> Void) -> CardError? {
        do {
            try body()
            return nil
        } catch let error as CardError {
            return error
        } catch {
            Issue.record("not a CardError: \(error)")
            return nil
        }
    }

    @Test func errorsSayWhichOptionWasWrongAndOfWhatKind() {
        let tooMany = error { _ = try CardOptions(parsing: "queues=17", for: .virtio) }
        #expect(tooMany?.kind == .optionOutOfRange)
        #expect(tooMany?.message.contains("queues=17") == true)
        let tinyMTU = error { _ = try CardOptions(parsing: "mtu=40", for: .virtio) }
        #expect(tinyMTU?.kind == .optionOutOfRange)
        #expect(tinyMTU?.message.contains("mtu=40") == true)
        let unknown = error { _ = try CardOptions(parsing: "speed=10", for: .virtio) }
        #expect(unknown?.kind == .badOption)
        #expect(unknown?.message.contains("speed") == true)
        let malformed = error { _ = try CardOptions(parsing: "queues=two", for: .virtio) }
        #expect(malformed?.kind == .badOption)
        let notVirtio = error { _ = try CardOptions(parsing: "mtu=9000", for: .e82545em) }
        #expect(notVirtio?.kind == .badOption)
        #expect(notVirtio?.message.contains("82545em") == true)
        let pairsOnPCNet = error {
            _ = try CardModel.am79c970a.make(
                macAddress: mac, environment: environment(), options: CardOptions(queuePairs: 2))
        }
        #expect(pairsOnPCNet?.kind == .optionOutOfRange)
        let model = error { _ = try CardModel(named: "rtl8139") }
        #expect(model?.kind == .unknownModel)
        #expect(model?.message.contains("rtl8139") == true)
        #expect(error { _ = try CardOptions(parsing: "queues=16,mtu=65535", for: .virtio) } == nil)
    }
}
