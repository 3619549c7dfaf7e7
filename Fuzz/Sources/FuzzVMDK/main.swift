// Fuzzes the VMDK parser (VMDKSparseDisk): input in the sparse format of FuzzContainerSupport (container size, then
// pieces over zeros). Malformed input must throw, never trap; a disk that opens must keep checkDisk's rules
// (data map sorted, disjoint and inside the disk; repeatable reads; zeros outside the map).

import DiskContainers
import FuzzContainerSupport
import FuzzSupport

// Byte 0 odd: the rest is descriptor text (monolithicFlat and friends), parsed and checked with zero-filled
// extents of the sizes it names (capped).
func fuzzDescriptor(_ text: [UInt8]) {
    guard let d = try? VMDKDescriptor(text) else { return }
    _ = d.hasParent
    guard (try? VMDKFlatDisk.check(d)) != nil else { return }
    let readers: [(any ContainerReader)?] = d.extents.map { e in
        e.kind == .zero ? nil : SparseFile([0, 0, 0, 4])  // 64 MiB of zeros
    }
    guard let disk = try? VMDKFlatDisk(d, extentReaders: readers) else { return }
    checkDisk(disk)
}

fuzzMain { data, size in
    let input = fuzzBytes(data, size)
    if let first = input.first, first & 1 == 1 {
        fuzzDescriptor(Array(input.dropFirst()))
    } else {
        fuzzDisk(Array(input.dropFirst())) { try VMDKSparseDisk($0) }
    }
    return 0
}
