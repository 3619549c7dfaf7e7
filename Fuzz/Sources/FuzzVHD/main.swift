// Fuzzes the VHD parser (VHDDisk): input in the sparse format of FuzzContainerSupport (container size, then
// pieces over zeros). Malformed input must throw, never trap; a disk that opens must keep checkDisk's rules
// (data map sorted, disjoint and inside the disk; repeatable reads; zeros outside the map).

import DiskContainers
import FuzzContainerSupport
import FuzzSupport

fuzzMain { data, size in
    fuzzDisk(fuzzBytes(data, size)) { try VHDDisk($0) }
    return 0
}
