// Fuzzes the label parser: a leaf vdev (`VdevLabels`) made of one to four copies of a 256 KiB label, each
// parsed by `Label(bytes:index:offset:)`, with both renderings.
//
// Mutating a whole 256 KiB label byte by byte would spend nearly every execution in zero padding and in
// SHA-256 checksums that can never match again, so the input describes a label instead:
//
//   byte  0      flags: bit 0 seal the config area's embedded checksum after placing it; bit 1 seal every
//                uberblock slot that starts with an uberblock magic; bit 2 seal the bootenv block; bit 3 seal
//                big-endian (else little); bits 4-5 how many labels the vdev has (1...4; the rest are missing);
//                bits 6-7 uberblock slot shift for sealing, 10 + n
//   bytes 1-8    the leaf's size in bytes (little-endian), which places labels 2 and 3
//   bytes 9-10   B, bytes of bootenv block that follow (at label offset 0x2000, at most 8 KiB)
//   bytes 11-14  C, bytes of config area that follow the bootenv bytes (at 0x4000, at most 114 648)
//   then         B bootenv bytes, C config bytes, and the rest is the uberblock ring (at 0x20000, 128 KiB)
//
// Everything not given is zero. Sealing recomputes a checksum with the block's real offset, so the fuzzer
// reaches the paths behind a valid checksum (valid labels, uberblock choice) as well as the mismatch paths.
// Beyond "never traps", the target checks a few invariants of the result.

import FuzzSupport
import ZLabel

#if canImport(Glibc)
    import Glibc
#endif

func fuzzOne(_ input: [UInt8]) {
    var reader = FuzzReader(input)
    let flags = reader.u8()
    let vdevSize = reader.u64()
    let bootenvCount = Int(reader.u16())
    let configCount = Int(reader.u32())
    let bootenvBytes = reader.take(min(bootenvCount, LabelLayout.bootenvSize))
    let configBytes = reader.take(min(configCount, LabelLayout.configCapacity))
    let ringBytes = reader.take(LabelLayout.uberblockRingSize)

    var template = [UInt8](repeating: 0, count: LabelLayout.labelSize)
    template.replaceSubrange(
        LabelLayout.bootenvOffset..<(LabelLayout.bootenvOffset + bootenvBytes.count), with: bootenvBytes)
    template.replaceSubrange(
        LabelLayout.configOffset..<(LabelLayout.configOffset + configBytes.count), with: configBytes)
    template.replaceSubrange(
        LabelLayout.uberblockRingOffset..<(LabelLayout.uberblockRingOffset + ringBytes.count), with: ringBytes)

    let order: ByteOrder = flags & 8 != 0 ? .big : .little
    let labelCount = Int((flags >> 4) & 3) + 1
    let shift = 10 + Int(flags >> 6)
    let canHold = LabelLayout.alignedSize(vdevSize) >= UInt64(LabelLayout.labelCount * LabelLayout.labelSize)

    var labelBytes: [[UInt8]?] = Array(repeating: nil, count: LabelLayout.labelCount)
    for index in 0..<labelCount {
        let offset =
            canHold
            ? LabelLayout.labelOffset(index, vdevSize: vdevSize) : UInt64(index * LabelLayout.labelSize)
        var bytes = template
        if flags & 1 != 0 {
            seal(&bytes, at: LabelLayout.configOffset, count: LabelLayout.configSize, labelOffset: offset, order)
        }
        if flags & 4 != 0 {
            seal(&bytes, at: LabelLayout.bootenvOffset, count: LabelLayout.bootenvSize, labelOffset: offset, order)
        }
        if flags & 2 != 0 {
            let slotSize = 1 << shift
            for slot in stride(from: LabelLayout.uberblockRingOffset, to: LabelLayout.labelSize, by: slotSize) {
                let magic = UInt64(
                    littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: slot, as: UInt64.self) })
                guard magic == Uberblock.magicValue || magic == Uberblock.magicValue.byteSwapped else { continue }
                let slotOrder: ByteOrder = magic == Uberblock.magicValue ? .little : .big
                seal(&bytes, at: slot, count: slotSize, labelOffset: offset, slotOrder)
            }
        }
        labelBytes[index] = bytes
    }

    // The leaf; `VdevLabels` runs `Label(bytes:index:offset:)` on every label that is there.
    let vdev = VdevLabels(labelBytes: labelBytes, vdevSize: vdevSize)
    fuzzRequire(vdev.labels.count == LabelLayout.labelCount, "\(vdev.labels.count) labels")
    for (i, label) in vdev.labels.enumerated() {
        fuzzRequire(label.index == i, "label \(i) has index \(label.index)")
        check(label)
        if i >= labelCount { fuzzRequire(label.status == .absent, "missing label \(i) is \(label.status)") }
        if i < labelCount, flags & 1 != 0, label.config != nil {
            fuzzRequire(label.status == .valid, "label \(i): a sealed config that unpacks is \(label.status)")
        }
    }
    if let active = vdev.activeUberblock {
        let slot = vdev.labels[active.label].uberblocks[active.slot]
        fuzzRequire(slot.isUsable, "the active uberblock's slot is not usable")
        fuzzRequire(slot.uberblock == active.uberblock, "the active uberblock differs from its slot")
    }
    if let chosen = vdev.configLabel { fuzzRequire(chosen.status == .valid, "config taken from a \(chosen.status) label") }
    let groups = vdev.identicalGroups
    fuzzRequire(groups.flatMap { $0 }.sorted() == Array(0..<LabelLayout.labelCount), "groups \(groups)")
    _ = vdev.json(offset: 0, includeUberblocks: true).rendered(pretty: true)
    _ = vdev.zdbText(includeUberblocks: true)
    if verbose {
        let statuses = vdev.labels.map { "\($0.index):\($0.status.rawValue)" }.joined(separator: " ")
        let active = vdev.activeUberblock.map { "txg \($0.uberblock.txg) in label \($0.label) slot \($0.slot)" }
        print("labels \(statuses); active uberblock: \(active ?? "none"); healthy: \(vdev.isHealthy)")
    }
}

/// `FUZZ_VERBOSE=1` prints what each input parses as, for looking at seeds and reproducers.
let verbose = getenv("FUZZ_VERBOSE") != nil

/// Invariants of one parsed label.
func check(_ label: Label) {
    switch label.status {
    case .valid:
        fuzzRequire(label.config != nil && label.configChecksum.isValid, "a valid label without config or checksum")
        fuzzRequire(label.problem == nil, "a valid label with a problem: \(label.problem ?? "")")
    case .checksumMismatch:
        fuzzRequire(label.config != nil && !label.configChecksum.isValid, "a checksum-mismatch label is inconsistent")
    case .unreadable, .absent:
        fuzzRequire(label.config == nil, "a \(label.status) label with a config")
        fuzzRequire(label.problem != nil, "a \(label.status) label without a reason")
    }
    if let packed = label.packedSize, let config = label.config {
        let written = packed - unwrittenBytes(config)
        fuzzRequire(written <= LabelLayout.configCapacity, "packed list of \(written) bytes exceeds the config area")
    }
    for (i, slot) in label.uberblocks.enumerated() {
        fuzzRequire(slot.index == i, "slot \(i) has index \(slot.index)")
    }
}

/// Seals the embedded checksum of the block at `start` in a label that sits at `labelOffset` in the leaf.
func seal(_ label: inout [UInt8], at start: Int, count: Int, labelOffset: UInt64, _ order: ByteOrder) {
    var block = Array(label[start..<(start + count)])
    EmbeddedChecksum.seal(&block, offset: labelOffset + UInt64(start), order: order)
    label.replaceSubrange(start..<(start + count), with: block)
}

fuzzMain { data, size in
    fuzzOne(fuzzBytes(data, size))
    return 0
}
