import Foundation
import NICCards
import NICHarness

enum BenchCommand {
    static let help = """
        usage: vnic bench [--json] [--seconds S] [--card MODEL]... [--tx | --rx] [--frame BYTES]...

        Measures transmit and receive through each implemented card in the harness (guest RAM,
        descriptor rings, a null sink and a frame source) at 64 and 1514 bytes (and 9014 on the
        cards with jumbo frames), with 1 and 256 descriptors per doorbell (virtio: split and
        packed rings as rows virtio and virtio-packed, mergeable receive buffers), and the machine's
        memcpy bandwidth as the yardstick. Build with 'swift run -c release vnic bench'; debug
        builds are many times slower.

          --json        one JSON object per line instead of a table
          --seconds S   time spent on each figure (default 0.25)
          --card MODEL  only this card (repeatable): \(CardModel.implemented.map(\.rawValue).joined(separator: ", "))
          --tx, --rx    only transmit or only receive
          --frame BYTES only this frame size (repeatable): 64, 1514 or 9014
        """

    static func run(_ arguments: [String]) throws(CommandLineError) -> Int32 {
        var json = false
        var seconds = 0.25
        var models: [CardModel] = []
        var directions = ["tx", "rx"]
        var sizes: [Int] = []
        var index = 0
        while index < arguments.count {
            switch arguments[index] {
            case "-h", "--help":
                print(help)
                return 0
            case "--json":
                json = true
            case "--tx", "--rx":
                directions = [String(arguments[index].dropFirst(2))]
            case "--frame":
                index += 1
                guard index < arguments.count, let size = Int(arguments[index]), [64, 1514, 9014].contains(size) else {
                    throw CommandLineError(message: "bench: --frame needs 64, 1514 or 9014")
                }
                sizes.append(size)
            case "--card":
                index += 1
                guard index < arguments.count, let model = CardModel(rawValue: arguments[index]), model.isImplemented
                else {
                    let known = CardModel.implemented.map(\.rawValue).joined(separator: ", ")
                    throw CommandLineError(message: "bench: --card needs one of \(known)")
                }
                models.append(model)
            case "--seconds":
                index += 1
                guard index < arguments.count, let value = Double(arguments[index]), value > 0, value <= 60 else {
                    throw CommandLineError(message: "bench: --seconds needs a number of seconds between 0 and 60")
                }
                seconds = value
            default:
                throw CommandLineError(message: "bench: unknown argument '\(arguments[index])'\n\n\(help)")
            }
            index += 1
        }
        #if DEBUG
        if !json { print("note: debug build; run 'swift run -c release vnic bench' for real figures") }
        #endif
        let results: [Benchmark.Result]
        do throws(HarnessError) {
            results = try Benchmark.run(
                seconds: seconds, models: models.isEmpty ? CardModel.implemented : models, directions: directions,
                sizes: sizes.isEmpty ? nil : sizes)
        } catch {
            throw CommandLineError(message: "bench: \(error.message)", status: 1)
        }
        let memcpy = Benchmark.memcpyBandwidth(seconds: seconds)
        if json {
            for result in results { print(result.json) }
            print("{\"memcpyGBps\":\(String(format: "%.3f", memcpy))}")
            return 0
        }
        // One row per card, direction and frame size; a cell per batch size, and the largest batch against memcpy.
        var header = pad("card", 14) + pad("dir", 5) + pad("frame", 7)
        for batch in Benchmark.batches { header += pad("x\(batch)", 16) }
        print(header + "of memcpy")
        for label in results.map(\.label).uniqued() {
            let rows = results.filter { $0.label == label }
            guard let model = rows.first?.card else { continue }
            for direction in ["tx", "rx"] {
                for size in Benchmark.frameSizes(model)
                where rows.contains(where: { $0.direction == direction && $0.frameBytes == size }) {
                    var line = pad(label, 14) + pad(direction, 5) + pad("\(size)B", 7)
                    var last: Benchmark.Result?
                    for batch in Benchmark.batches {
                        guard
                            let result = rows.first(where: {
                                $0.direction == direction && $0.frameBytes == size && $0.batch == batch
                            })
                        else { continue }
                        line += pad(String(format: "%.2fM %.2fG", result.framesPerSecond / 1e6, result.gbps), 16)
                        last = result
                    }
                    if let last { line += String(format: "%.1f%%", last.gbps / 8 / memcpy * 100) }
                    print(line)
                }
            }
        }
        print("cells: million frames per second, Gbit/s")
        print(String(format: "memcpy: %.2f GB/s", memcpy))
        return 0
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
