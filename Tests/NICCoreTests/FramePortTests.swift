import NICCore
import Synchronization
import Testing

/// A tap that records what it sees.
final class RecordingTap: FrameTap {
    private let seen = Mutex<[(FrameDirection, [UInt8])]>([])
    var frames: [(FrameDirection, [UInt8])] { seen.withLock { $0 } }
    func observe(_ frame: UnsafeRawBufferPointer, direction: FrameDirection) {
        seen.withLock { $0.append((direction, Array(frame))) }
    }
}

/// An attachment that records every call.
final class RecordingAttachment: NetworkAttachment {
    enum Event: Equatable {
        case attach, detach, transmit([UInt8], FrameMetadata), promiscuous(Bool)
    }

    private let log = Mutex<[Event]>([])
    var events: [Event] { log.withLock { $0 } }

    func transmit(_ frame: UnsafeRawBufferPointer, metadata: FrameMetadata, from port: FramePort) {
        log.withLock { $0.append(.transmit(Array(frame), metadata)) }
    }
    func didAttach(_ port: FramePort) {
        log.withLock { $0.append(.attach) }
        port.setCarrier(true)
    }
    func didDetach(_ port: FramePort) { log.withLock { $0.append(.detach) } }
    func promiscuousModeChanged(_ promiscuous: Bool, on port: FramePort) {
        log.withLock { $0.append(.promiscuous(promiscuous)) }
    }
}

/// Counts `onWork` calls.
final class WorkCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    var callback: @Sendable () -> Void { { self.count.add(1, ordering: .relaxed) } }
}

@Suite struct FramePortTests {
    @Test func boundedQueueDropsAndCounts() {
        let port = FramePort(queueCapacity: 2)
        #expect(port.deliver([1]))
        #expect(port.deliver([2]))
        #expect(!port.deliver([3]))
        #expect(!port.deliver([4]))
        #expect(port.queuedFrames == 2)
        #expect(port.inboundAccepted == 2)
        #expect(port.inboundDropped == 2)
        #expect(port.nextInbound()?.bytes == [1])
        #expect(port.deliver([5]), "room again after draining one")
        #expect(port.inboundDropped == 2)
    }

    @Test func deliversInFIFOOrderAcrossWrapAround() {
        let port = FramePort(queueCapacity: 3)
        var received: [UInt8] = []
        var next: UInt8 = 0
        for round in 0..<10 {
            for _ in 0..<(round % 3 + 1) {
                #expect(port.deliver([next], metadata: FrameMetadata(vlanTag: UInt16(next))))
                next += 1
            }
            while let frame = port.nextInbound() {
                received.append(contentsOf: frame.bytes)
                #expect(frame.metadata.vlanTag == UInt16(frame.bytes[0]), "metadata travels with its frame")
            }
        }
        #expect(received == Array(0..<next))
        #expect(port.nextInbound() == nil)
        #expect(port.queuedFrames == 0)
    }

    @Test func wakeupCallbackStaysCheapAcrossManySignals() {
        // Regression: the callback used to be re-wrapped in two reabstraction thunks per signal, so after N
        // deliveries each signal ran 2N nested thunks and the stack overflowed (seen with a QEMU guest).
        let port = FramePort(queueCapacity: 4)
        let calls = Atomic<Int>(0)
        port.onWork = { calls.add(1, ordering: .relaxed) }
        for _ in 0..<200_000 {
            port.deliver([0, 1, 2, 3])
            port.acknowledgeWork()
            _ = port.nextInbound()
        }
        #expect(calls.load(ordering: .relaxed) == 200_000)
        #expect(port.onWork != nil)
        port.onWork = nil
        port.deliver([0])
        #expect(calls.load(ordering: .relaxed) == 200_000)
    }

    @Test func onWorkRingsOncePerBatchUntilAcknowledged() {
        let port = FramePort(queueCapacity: 8)
        let calls = Atomic<Int>(0)
        port.onWork = { calls.add(1, ordering: .relaxed) }
        for _ in 0..<5 { port.deliver([1]) }
        #expect(calls.load(ordering: .relaxed) == 1, "one wakeup for a batch")
        port.acknowledgeWork()
        while port.nextInbound() != nil {}
        port.deliver([2])
        #expect(calls.load(ordering: .relaxed) == 2, "a frame after the drain wakes the consumer again")
        port.setCarrier(true)
        #expect(calls.load(ordering: .relaxed) == 2, "still pending: no second wakeup")
        #expect(port.hasPendingWork)
    }

    @Test func zeroCapacityMeansOne() {
        let port = FramePort(queueCapacity: 0)
        #expect(port.deliver([1]))
        #expect(!port.deliver([2]))
    }

    @Test func carrierChangesSetPendingWork() {
        let port = FramePort()
        let work = WorkCounter()
        port.onWork = work.callback
        #expect(!port.carrier)
        #expect(!port.hasPendingWork)
        port.setCarrier(true)
        #expect(port.carrier)
        #expect(port.hasPendingWork)
        #expect(work.value == 1)
        port.acknowledgeWork()
        #expect(!port.hasPendingWork)
        port.setCarrier(true)
        #expect(!port.hasPendingWork, "no change, no work")
        #expect(work.value == 1)
        port.setCarrier(false)
        #expect(port.hasPendingWork)
        #expect(work.value == 2)
    }

    @Test func deliverySetsPendingWorkRefusalDoesNot() {
        let port = FramePort(queueCapacity: 1)
        let work = WorkCounter()
        port.onWork = work.callback
        port.deliver([1])
        #expect(port.hasPendingWork)
        #expect(work.value == 1)
        port.acknowledgeWork()
        port.deliver([2])
        #expect(!port.hasPendingWork, "a refused frame is not work")
        #expect(work.value == 1)
    }

    @Test func tapsSeeBothDirections() {
        let port = FramePort(queueCapacity: 1)
        let tap = RecordingTap()
        port.addTap(tap)
        port.attach(RecordingAttachment())
        [UInt8]([0xAA, 0xBB]).withUnsafeBytes { port.transmit($0) }
        port.deliver([0xCC])
        port.deliver([0xDD])
        let frames = tap.frames
        #expect(frames.count == 2, "the refused frame never reached the card")
        #expect(frames.first?.0 == .transmitted)
        #expect(frames.first?.1 == [0xAA, 0xBB])
        #expect(frames.last?.0 == .received)
        #expect(frames.last?.1 == [0xCC])
        port.removeTap(tap)
        [UInt8]([0xEE]).withUnsafeBytes { port.transmit($0) }
        #expect(tap.frames.count == 2)
    }

    @Test func transmitWithNothingAttachedIsCounted() {
        let port = FramePort()
        let tap = RecordingTap()
        port.addTap(tap)
        [UInt8]([1, 2, 3]).withUnsafeBytes { port.transmit($0) }
        #expect(port.transmittedUnattached == 1)
        #expect(port.transmitted == 0)
        #expect(tap.frames.count == 1, "capture still sees what the card sent")
    }

    @Test func attachmentLifecycle() {
        let port = FramePort()
        let first = RecordingAttachment()
        port.attach(first)
        #expect(port.attachment === first)
        #expect(port.carrier)
        let metadata = FrameMetadata(checksum: ChecksumRequest(start: 34, offset: 16))
        [UInt8]([9, 8, 7]).withUnsafeBytes { port.transmit($0, metadata: metadata) }
        #expect(port.transmitted == 1)
        port.setPromiscuous(true)
        port.setPromiscuous(true)
        #expect(port.isPromiscuous)
        let second = RecordingAttachment()
        port.attach(second)
        #expect(first.events == [.attach, .transmit([9, 8, 7], metadata), .promiscuous(true), .detach])
        #expect(second.events == [.attach, .promiscuous(true)], "a promiscuous card tells its new attachment")
        port.detach()
        #expect(!port.carrier)
        #expect(port.attachment == nil)
        #expect(second.events == [.attach, .promiscuous(true), .detach])
        port.detach()
        #expect(second.events.count == 3, "detaching twice is harmless")
    }

    @Test func metadataFinishedness() {
        #expect(FrameMetadata.none.isFinished)
        #expect(!FrameMetadata(vlanTag: 5).isFinished)
        let segmentation = SegmentationRequest(kind: .tcpIPv4, segmentSize: 1448, headerLength: 54)
        #expect(!FrameMetadata(segmentation: segmentation).isFinished)
    }
}
