import NICCore
import NetBackend
import Testing

@Suite struct NullAttachmentTests {
    @Test func linkStaysDownAndFramesAreDroppedAndCounted() {
        let null = NullAttachment()
        let port = FramePort()
        port.setCarrier(true)
        port.attach(null)
        #expect(!port.carrier, "attaching to nothing takes the link down")
        for i in 0..<5 { port.send(frame(to: .broadcast, from: mac(1), tag: UInt32(i))) }
        #expect(null.droppedFrames == 5)
        #expect(port.transmitted == 5, "the card did hand the frames over")
        #expect(port.queuedFrames == 0)
        #expect(!port.carrier)
        #expect(null.counters == [Counter("drop_not_attached", 5)])
    }

    @Test func oneInstanceServesSeveralPorts() {
        let null = NullAttachment()
        let ports = (0..<3).map { _ in FramePort() }
        for port in ports {
            port.attach(null)
            port.send(frame(to: .broadcast, from: mac(1)))
            port.send([0x01])
        }
        #expect(null.droppedFrames == 6, "short frames are dropped too")
        #expect(ports.allSatisfy { !$0.carrier && $0.queuedFrames == 0 })
    }
}
