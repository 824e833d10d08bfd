/// The key of a ``CounterTable``: an enum with one case per counter, in report order.
///
/// Use an `Int` raw type and let the cases number themselves from 0 (no explicit raw values); ``names`` lists the
/// counters' report names in the same order.
public protocol CounterKey: CaseIterable, RawRepresentable, Hashable, Sendable where RawValue == Int {
    /// The counters' names as reports spell them (`tx_frames`), in case order.
    static var names: [String] { get }
}

/// A fixed set of 64-bit counters stored inline and indexed by their key: `statistics[.receivedFrames] &+= 1` costs
/// what incrementing a stored property costs.
///
/// `count` is the number of cases of `Key`; creating a table with another count stops the program.
public struct CounterTable<Key: CounterKey, let count: Int>: Sendable, Hashable {
    @usableFromInline var values: InlineArray<count, UInt64>

    /// A table with every counter at 0.
    public init() {
        precondition(Key.allCases.count == count && Key.names.count == count, "\(Key.self) has not \(count) counters")
        precondition(Key.allCases.enumerated().allSatisfy { $0 == $1.rawValue }, "\(Key.self) is not numbered from 0")
        values = InlineArray(repeating: 0)
    }

    /// The counter `key`.
    @inlinable public subscript(key: Key) -> UInt64 {
        @inline(__always) get { values[key.rawValue] }
        @inline(__always) set { values[key.rawValue] = newValue }
    }

    /// Adds every counter of `other` to this table's (wrapping).
    @inlinable
    public mutating func add(_ other: Self) {
        for index in values.indices { values[index] &+= other.values[index] }
    }

    /// The sum of every counter (wrapping).
    @inlinable public var total: UInt64 {
        var sum: UInt64 = 0
        for index in values.indices { sum &+= values[index] }
        return sum
    }

    /// The counters, named, in key order.
    public var counters: [Counter] { Key.allCases.map { Counter(Key.names[$0.rawValue], self[$0]) } }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.values.indices.allSatisfy { lhs.values[$0] == rhs.values[$0] }
    }

    public func hash(into hasher: inout Hasher) {
        for index in values.indices { hasher.combine(values[index]) }
    }
}
