import Foundation
import NICCore

/// Byte helpers for hand-built files.
func bigEndian32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
func bigEndian16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)] }
func littleEndian32(_ value: UInt32) -> [UInt8] { bigEndian32(value).reversed() }
func littleEndian16(_ value: UInt16) -> [UInt8] { bigEndian16(value).reversed() }
