import Foundation
import NICCore
import NICTestSupport
import Testing

/// Reads the real captures in the shared fixtures (never copied into the repository).
@Suite struct PcapFixtureTests {
    /// `file` and `packets` columns of `index.csv`, whose quoted fields may hold commas.
    private func index(_ directory: URL) throws -> [(file: String, packets: Int)] {
        let text = try String(contentsOf: directory.appendingPathComponent("index.csv"), encoding: .utf8)
        var rows: [(String, Int)] = []
        for line in text.split(whereSeparator: \.isNewline).dropFirst() {
            var fields: [String] = []
            var field = ""
            var quoted = false
            for character in line {
                switch character {
                case "\"": quoted.toggle()
                case "," where !quoted:
                    fields.append(field)
                    field = ""
                default: field.append(character)
                }
            }
            fields.append(field)
            guard fields.count >= 8, let packets = Int(fields[7]) else { continue }
            rows.append((fields[0], packets))
        }
        return rows
    }

    @Test func everyIndexedCaptureReads() throws {
        guard let directory = sharedPcapFixtures() else {
            print("SKIP: ../shared/fixtures/pcaps not found next to the repository")
            return
        }
        let rows = try index(directory)
        try #require(!rows.isEmpty)
        for row in rows {
            let reader = try PcapReader(path: directory.appendingPathComponent(row.file).path)
            #expect(reader.records.count == row.packets, "\(row.file)")
            // The upper bits of the link-type field carry FCS information; the low 16 bits are the type.
            #expect(reader.linkType == 1, "\(row.file) is Ethernet")
            for record in reader.records {
                #expect(record.bytes.count <= Int(reader.snapshotLength), "\(row.file)")
                #expect(record.bytes.count <= record.originalLength, "\(row.file)")
            }
        }
    }

    @Test func slirpARPCaptureContents() throws {
        guard let directory = sharedPcapFixtures() else {
            print("SKIP: ../shared/fixtures/pcaps not found next to the repository")
            return
        }
        let reader = try PcapReader(path: directory.appendingPathComponent("slirp_IN_arp_arp.pcap").path)
        try #require(reader.records.count == 2)
        let request = reader.records[0]
        let reply = reader.records[1]
        // Written little-endian with microsecond stamps: 0x662ac783 s, 0x1943a us.
        #expect(request.timestampNanoseconds == 0x662A_C783 * 1_000_000_000 + 0x1_943A * 1000)
        #expect(request.bytes.count == 42)
        #expect(request.originalLength == 42)
        #expect(MACAddress(bytes: request.bytes[0..<6]) == .broadcast)
        #expect(Array(request.bytes[12..<14]) == [0x08, 0x06], "ARP")
        #expect(Array(request.bytes[20..<22]) == [0x00, 0x01], "request")
        #expect(Array(request.bytes[38..<42]) == [10, 0, 2, 2], "who has 10.0.2.2")
        #expect(MACAddress(bytes: reply.bytes[6..<12]) == MACAddress("52:55:0a:00:02:02"))
        #expect(Array(reply.bytes[20..<22]) == [0x00, 0x02], "reply")
        #expect(reply.timestampNanoseconds >= request.timestampNanoseconds)
    }
}
