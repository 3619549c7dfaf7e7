import BootTargets
import NVList
import DiskPartitions
import ZFSImage
import ZFSLabel

extension LeafEdit {
    /// Takes the values a boot target computed; fields the target leaves alone stay as they are in this edit.
    public mutating func adopt(_ plan: BootTargetPlan) {
        func convert(_ change: BootTargets.LabelChange) -> LeafEdit.Change? {
            switch change {
            case .set(let v): .set(NVString(v))
            case .remove: .remove
            case .keep: nil
            }
        }
        if let c = convert(plan.physPath) { physPath = c }
        if let c = convert(plan.path) { path = c }
        if let c = convert(plan.devid) { devid = c }
    }
}

extension PoolPlacement {
    /// Where a pool sits, from the region it was found in: a VTOC slice or GPT partition; a bare vdev (no
    /// partition table) is taken to be slice 0, the usual place of an illumos root pool.
    public init(region: VdevRegion) throws(BootTargetError) {
        guard let p = region.partition else {
            self = .vtocSlice(0)
            return
        }
        guard let slice = p.illumosSlice, let placement = PoolPlacement(regionScheme: p.scheme.rawValue, illumosSlice: slice) else {
            throw BootTargetError.noMinorName("the pool is in \(p.name) (\(p.scheme.rawValue)), which is not an illumos slice or EFI partition")
        }
        self = placement
    }
}
