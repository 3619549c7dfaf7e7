// The umbrella module: `import ZLabel` brings in everything a tool needs to read and edit ZFS labels in
// images and devices, and nothing that speaks HTTP.
@_exported public import NVList
@_exported public import ZFSChecksum
@_exported public import ZFSLabel
@_exported public import DiskPartitions
@_exported public import BootTargets
@_exported public import ZFSImage
@_exported public import ZFSMOS
