import NICCards
import NICCore

extension Scenario {
    /// The virtio-net scenarios: both interfaces, both ring formats, offloads, mergeable buffers, the control queue,
    /// link changes and reset.
    static func virtioScenarios() -> [Scenario] {
        func make(
            _ suffix: String, _ summary: String, options: VirtioDriver.Options = VirtioDriver.Options(),
            _ body: @escaping @Sendable (VirtioDriver) throws -> Void
        ) -> Scenario {
            Scenario(name: "virtio-\(suffix)", model: .virtio, summary: summary) { harness in
                let driver = VirtioDriver(harness: harness, options: options)
                driver.enableDevice()
                _ = try driver.probe()
                try body(driver)
            }
        }
        let legacy = VirtioDriver.Options(legacy: true)
        let packed = VirtioDriver.Options(packed: true)
        return [
            make(
                "legacy-probe",
                "virtio_pci.force_legacy=1: reset, features through BAR0, queues by PFN, DRIVER_OK, MAC from config",
                options: legacy
            ) { driver in
                try driver.open()
                _ = driver.linkUp()
                try driver.close()
            },
            make(
                "modern-probe",
                "virtio_pci modern: capability walk, FEATURES_OK read back, queues through common config, MSI-X vectors",
                options: VirtioDriver.Options(msix: true)
            ) { driver in
                try driver.open()
                _ = driver.linkUp()
                try driver.close()
            },
            make(
                "legacy-transmit-receive", "legacy: a 10-byte header in its own descriptor; send, then receive",
                options: legacy
            ) { driver in
                try driver.open()
                let mac = driver.harness.card.macAddress
                try driver.transmit(broadcast(from: mac))
                _ = driver.harness.nextTransmitted()
                driver.harness.receive(unicast(to: mac, length: 98))
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                _ = driver.harness.interruptLevel()
                try driver.close()
            },
            make("modern-split-transmit", "split ring: send a broadcast frame, take the interrupt, reclaim the buffer")
            {
                driver in
                try oneFrame(driver, transmit: true)
            },
            make("modern-split-receive", "split ring: receive a unicast frame into a small buffer, refill") { driver in
                try oneFrame(driver, transmit: false)
            },
            make(
                "modern-packed-transmit", "packed ring: send a broadcast frame, the used descriptor comes back",
                options: packed
            ) { driver in
                try oneFrame(driver, transmit: true, levelAfter: false)
            },
            make("modern-packed-receive", "packed ring: receive a unicast frame, refill", options: packed) { driver in
                try oneFrame(driver, transmit: false, levelAfter: false)
            },
            make("gso-transmit", "HOST_TSO4: a 4000-byte TCP payload leaves as three 1460-byte-MSS segments") {
                driver in
                try driver.open()
                let frame = tcpFrame(from: driver.harness.card.macAddress, payload: 4000)
                try driver.transmit(frame, offload: .tcp4(mss: 1460, frame: frame))
                for _ in 0..<3 { _ = driver.harness.nextTransmitted() }
                _ = driver.harness.transmittedCount()
                try driver.handleInterrupt()
                try driver.close()
            },
            make("checksum-transmit", "CSUM: the device completes a TCP checksum from csum_start and csum_offset") {
                driver in
                try driver.open()
                let frame = tcpFrame(from: driver.harness.card.macAddress, payload: 100)
                try driver.transmit(frame, offload: .checksum(start: 34, offset: 16))
                _ = driver.harness.nextTransmitted()
                try driver.handleInterrupt()
                try driver.close()
            },
            make(
                "mergeable-receive",
                "MRG_RXBUF: a 9014-byte frame spreads over six 1536-byte buffers (num_buffers = 6)",
                options: VirtioDriver.Options(mergeable: true)
            ) { driver in
                try driver.open()
                driver.harness.receive(unicast(to: driver.harness.card.macAddress, length: 9014))
                try driver.handleInterrupt()
                try driver.close()
            },
            make(
                "control",
                "control queue: RX mode, MAC table and address, VLAN filter; MQ pairs refused (one pair, MQ not offered)"
            ) { driver in
                try driver.open()
                try driver.setReceiveMode(promiscuous: true, allMulticast: false)
                try driver.setReceiveMode(promiscuous: false, allMulticast: true)
                try driver.setMACTable(unicast: [peer], multicast: [MACAddress("01:00:5e:00:00:01")!])
                try driver.setMACAddress(MACAddress("52:54:00:ab:cd:ef")!)
                _ = driver.linkUp()
                try driver.filterVLAN(42, add: true)
                try driver.filterVLAN(42, add: false)
                try driver.setQueuePairs(1)
                try driver.close()
            },
            make("link", "cable unplugged and plugged back: a config interrupt each time, the status follows") {
                driver in
                try driver.open()
                _ = driver.linkUp()
                driver.harness.setLink(up: false)
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                driver.harness.setLink(up: true)
                _ = driver.harness.interruptLevel()
                try driver.handleInterrupt()
                try driver.close()
            },
            make(
                "msix-link", "MSI-X: transmit and link change signal their own vectors",
                options: VirtioDriver.Options(msix: true)
            ) { driver in
                try driver.open()
                try driver.transmit(broadcast(from: driver.harness.card.macAddress))
                _ = driver.harness.nextTransmitted()
                driver.harness.setLink(up: false)
                try driver.handleInterrupt()
                driver.harness.setLink(up: true)
                try driver.handleInterrupt()
                try driver.close()
            },
            make("reset", "reset while running: status 0 stops the queues; the driver starts over and sends again") {
                driver in
                try driver.open()
                try driver.transmit(broadcast(from: driver.harness.card.macAddress))
                _ = driver.harness.nextTransmitted()
                try driver.resetDevice()
                _ = try driver.probe()
                try driver.open()
                try driver.transmit(broadcast(from: driver.harness.card.macAddress))
                _ = driver.harness.nextTransmitted()
                _ = driver.harness.transmittedCount()
                try driver.close()
            },
        ]
    }
}
