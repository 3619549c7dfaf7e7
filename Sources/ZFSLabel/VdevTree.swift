public import NVList

/// A leaf of a label's `vdev_tree`: a disk or file vdev, found by walking the tree's `children`.
public struct VdevLeaf: Sendable, Hashable {
    /// The leaf's `guid`.
    public var guid: UInt64
    /// The leaf's `type` (`disk`, `file`).
    public var type: NVString?
    /// `path`, `devid` and `phys_path`, when present, with their exact bytes (which need not be UTF-8).
    public var path: NVString?, devid: NVString?, physPath: NVString?
    /// Where the leaf sits in the label config, such as `vdev_tree.children[1]`.
    public var configPath: NVPath
}

extension NVList {
    /// The leaves of the `vdev_tree` in this label config, in tree order.
    ///
    /// A label's tree describes only the top-level vdev that holds the labelled leaf, so for a mirror or
    /// raidz every member's label lists all of its siblings too.
    public var vdevLeaves: [VdevLeaf] {
        guard let tree = list("vdev_tree") else { return [] }
        var out: [VdevLeaf] = []
        func walk(_ node: NVList, _ path: [NVPath.Component], depth: Int) {
            guard depth < 16 else { return }
            if let children = node.lists("children"), !children.isEmpty {
                for (i, child) in children.enumerated() {
                    walk(child, path + [.key("children"), .index(i)], depth: depth + 1)
                }
                return
            }
            guard let guid = node.uint64("guid") else { return }
            out.append(VdevLeaf(guid: guid, type: node.string("type"), path: node.string("path"),
                                devid: node.string("devid"), physPath: node.string("phys_path"),
                                configPath: NVPath(components: path)))
        }
        walk(tree, [.key("vdev_tree")], depth: 0)
        return out
    }
}
