// The meta object set (MOS) and the walk to the pool's own config
//
// The active uberblock's `ub_rootbp` points at the MOS, an object set whose object 1 is the *object
// directory*: a ZAP from names to MOS object numbers. Its `config` entry names a packed-nvlist object (type
// 3, bonus type 4) whose bonus holds the packed length: that is the pool's own copy of its config, which
// real ZFS trusts over the labels on import. `pool_props` names the pool property ZAP (`bootfs` is the
// bootfs dataset's object number); `root_dataset` names the root DSL directory. A DSL directory's bonus
// (`dsl_dir_phys_t`) holds its parent (`dd_parent_obj`, byte 16) and a ZAP of its children's names
// (`dd_child_dir_zapobj`, byte 32); a dataset's bonus (`dsl_dataset_phys_t`) holds its directory
// (`ds_dir_obj`, byte 0). The pool name names the root directory.

public import NVList

/// A dataset named by its DSL object number.
public struct DatasetReference: Sendable, Hashable {
    /// The dataset's object number in the MOS (`zdb`'s "ID", GRUB's `zfs-bootfs=POOL/OBJ`).
    public var object: UInt64
    /// Its full name, pool first (`rpool/ROOT/omnios`).
    public var name: String

    /// Creates a reference to dataset object `object`, named `name`.
    public init(object: UInt64, name: String) {
        self.object = object
        self.name = name
    }
}

/// What the walk from the uberblock found in the MOS.
public struct MOSContents: Sendable, Hashable {
    /// The entries of the object directory (MOS object 1).
    public var objectDirectory: [ZAPEntry]
    /// The object holding the packed config.
    public var configObject: UInt64
    /// The packed config's length in bytes (the bonus).
    public var configSize: Int
    /// The pool's config as stored in the MOS.
    public var config: NVList
    /// The pool property ZAP's entries; empty when the pool has none.
    public var poolProperties: [ZAPEntry]
    /// The `bootfs` dataset, when the pool property is set and its name could be found.
    public var bootfs: DatasetReference?
    /// Why `bootfs` is set but could not be named, when that happened.
    public var bootfsProblem: String?
    /// The pool's root dataset (the head dataset of the `root_dataset` DSL directory), when it could be read:
    /// what the illumos loader boots when `bootfs` is not set.
    public var rootDataset: DatasetReference?

    /// The config in `zdb -C`'s layout: `MOS Configuration:` and the nvlist indented by 8
    /// (`dump_config`, `dump_nvlist`), without zdb's leading blank line.
    public var zdbText: String { "MOS Configuration:\n" + config.zdbDump(indent: 8) }
}

/// The walk from an uberblock's root block pointer to the MOS config.
public enum MOS {
    /// `DMU_POOL_DIRECTORY_OBJECT`.
    public static let objectDirectory: UInt64 = 1

    /// Reads the MOS config, the pool properties and the bootfs dataset.
    ///
    /// - Parameters:
    ///   - rootBlockPointer: the active uberblock's `ub_rootbp`.
    ///   - topology: the top-level vdevs, from the label configs.
    ///   - devices: the leaves present.
    /// - Throws: ``MOSError`` naming the block and every copy tried when a block does not verify, or what
    ///   is malformed or unsupported on the way.
    public static func read(rootBlockPointer: BlockPointer, topology: PoolTopology, devices: LeafReader)
        throws(MOSError) -> MOSContents
    {
        let os = try ObjectSet(rootBlockPointer: rootBlockPointer,
                               blocks: PoolBlockReader(topology: topology, devices: devices))
        return try read(os)
    }

    /// Reads the MOS config, the pool properties and the bootfs dataset from an opened MOS.
    public static func read(_ os: ObjectSet) throws(MOSError) -> MOSContents {
        let directory = try os.zapEntries(objectDirectory)
        guard let configObject = directory.first(where: { $0.name == "config" })?.uint64 else {
            throw MOSError(.notFound, "the MOS object directory has no 'config' entry (entries: \(directory.map(\.name).sorted().joined(separator: ", ")))")
        }
        let (config, size) = try readConfig(os, object: configObject)
        var properties: [ZAPEntry] = []
        if let props = directory.first(where: { $0.name == "pool_props" })?.uint64 {
            properties = try os.zapEntries(props)
        }
        var bootfs: DatasetReference?
        var problem: String?
        if let object = properties.first(where: { $0.name == "bootfs" })?.uint64, object != 0 {
            do throws(MOSError) {
                bootfs = DatasetReference(object: object, name: try datasetName(os, object, pool: config.string("name")?.description ?? "?"))
            } catch {
                problem = "bootfs dataset \(object): \(error)"
            }
        }
        // dsl_dir_phys_t: dd_head_dataset_obj at byte 8.
        var rootDataset: DatasetReference?
        if let dir = directory.first(where: { $0.name == "root_dataset" })?.uint64,
           let dn = try? os.dnode(dir), dn.bonusType == 12, let head = dn.bonusUInt64(at: 8), head != 0
        {
            rootDataset = DatasetReference(object: head, name: config.string("name")?.description ?? "?")
        }
        return MOSContents(objectDirectory: directory, configObject: configObject, configSize: size, config: config,
                           poolProperties: properties, bootfs: bootfs, bootfsProblem: problem, rootDataset: rootDataset)
    }

    /// Reads and decodes the packed-nvlist object `object` (the `config` object).
    public static func readConfig(_ os: ObjectSet, object: UInt64) throws(MOSError) -> (NVList, Int) {
        let dn = try os.dnode(object)
        guard dn.type == 3, dn.bonusType == 4, let packed = dn.bonusUInt64(at: 0) else {
            throw MOSError(.malformed, "MOS object \(object) named by 'config' has type \(dn.type), bonus type \(dn.bonusType) and a \(dn.bonus.count)-byte bonus, not a packed nvlist (3) with its size (4, 8 bytes)")
        }
        let bytes = try os.readObject(object, dnode: dn, length: packed)
        do {
            return (try NVList.decode(xdr: bytes).list, bytes.count)
        } catch {
            throw MOSError(.malformed, "MOS object \(object): the packed config (\(packed) bytes) does not unpack: \(error)",
                           location: BlockLocation(object: object, level: 0, blkid: 0))
        }
    }

    /// The full name of DSL dataset `object`: its directory's name.
    public static func datasetName(_ os: ObjectSet, _ object: UInt64, pool: String) throws(MOSError) -> String {
        let ds = try os.dnode(object)
        guard ds.bonusType == 16, let dir = ds.bonusUInt64(at: 0) else {
            throw MOSError(.malformed, "MOS object \(object) is not a DSL dataset (bonus type \(ds.bonusType), not 16)")
        }
        return try directoryName(os, dir, pool: pool)
    }

    /// The full name of DSL directory `object`, found by climbing `dd_parent_obj` and looking the child up
    /// in each parent's child-directory ZAP.
    public static func directoryName(_ os: ObjectSet, _ object: UInt64, pool: String) throws(MOSError) -> String {
        var components: [String] = []
        var current = object
        for _ in 0..<64 {
            let dir = try os.dnode(current)
            guard dir.bonusType == 12, let parent = dir.bonusUInt64(at: 16) else {
                throw MOSError(.malformed, "MOS object \(current) is not a DSL directory (bonus type \(dir.bonusType), not 12)")
            }
            if parent == 0 { return ([pool] + components.reversed()).joined(separator: "/") }
            let parentDir = try os.dnode(parent)
            guard parentDir.bonusType == 12, let children = parentDir.bonusUInt64(at: 32) else {
                throw MOSError(.malformed, "MOS object \(parent), parent of \(current), is not a DSL directory")
            }
            guard let entry = try os.zapEntries(children).first(where: { $0.uint64 == current }) else {
                throw MOSError(.notFound, "DSL directory \(current) is not listed among its parent \(parent)'s children (ZAP \(children))")
            }
            components.append(entry.name)
            current = parent
        }
        throw MOSError(.malformed, "DSL directory \(object) is nested more than 64 deep (a loop?)")
    }
}

extension NVList {
    /// The list as libnvpair's `dump_nvlist` prints it (what `zdb -C` shows): `name: value` lines,
    /// strings quoted, arrays one element per `name[i]:` line, nested lists indented by 4 more.
    public func zdbDump(indent: Int) -> String {
        var out = ""
        appendDump(to: &out, indent: indent)
        return out
    }

    private func appendDump(to out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        func line(_ name: String, _ value: String) { out += "\(pad)\(name): \(value)\n" }
        func array<T>(_ name: String, _ values: [T], _ render: (T) -> String) {
            for (i, v) in values.enumerated() { out += "\(pad)\(name)[\(i)]: \(render(v))\n" }
        }
        for pair in pairs {
            let n = pair.name
            switch pair.value {
            case .boolean: out += "\(pad)\(n)\n"
            case .booleanValue(let b): line(n, b ? "true" : "false")
            case .byte(let v): line(n, String(v))
            case .int8(let v): line(n, String(v))
            case .uint8(let v): line(n, String(v))
            case .int16(let v): line(n, String(v))
            case .uint16(let v): line(n, String(v))
            case .int32(let v): line(n, String(v))
            case .uint32(let v): line(n, String(v))
            case .int64(let v): line(n, String(v))
            case .uint64(let v): line(n, String(v))
            case .string(let s): line(n, "'\(s)'")
            case .booleanArray(let a): array(n, a) { $0 ? "true" : "false" }
            case .byteArray(let a): array(n, a) { String($0) }
            case .int8Array(let a): array(n, a) { String($0) }
            case .uint8Array(let a): array(n, a) { String($0) }
            case .int16Array(let a): array(n, a) { String($0) }
            case .uint16Array(let a): array(n, a) { String($0) }
            case .int32Array(let a): array(n, a) { String($0) }
            case .uint32Array(let a): array(n, a) { String($0) }
            case .int64Array(let a): array(n, a) { String($0) }
            case .uint64Array(let a): array(n, a) { String($0) }
            case .stringArray(let a): array(n, a) { "'\($0)'" }
            case .nvlist(let child):
                out += "\(pad)\(n):\n"
                child.appendDump(to: &out, indent: indent + 4)
            case .nvlistArray(let children):
                for (i, child) in children.enumerated() {
                    out += "\(pad)\(n)[\(i)]:\n"
                    child.appendDump(to: &out, indent: indent + 4)
                }
            case .hrtime, .double:
                out += "bad config type \(pair.value.type.rawValue) for \(n)\n"
            }
        }
    }
}
