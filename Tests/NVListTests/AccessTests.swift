import NVList
import Testing

@Suite struct AccessTests {
    static let config = NVList(pairs: [
        NVPair("name", .string("rpool")),
        NVPair("txg", .uint64(28)),
        NVPair("vdev_tree", .nvlist(NVList(pairs: [
            NVPair("type", .string("mirror")),
            NVPair("children", .nvlistArray([
                NVList(pairs: [NVPair("guid", .uint64(1)), NVPair("phys_path", .string("/a"))]),
                NVList(pairs: [NVPair("guid", .uint64(2)), NVPair("phys_path", .string("/b"))]),
            ])),
        ]))),
        NVPair("features_for_read", .nvlist(NVList(pairs: [NVPair("com.delphix:hole_birth", .boolean)]))),
        NVPair("hole_array", .uint64Array([4, 5])),
    ])

    @Test func lookupByPath() throws {
        #expect(Self.config.value(at: "vdev_tree.children[1].phys_path") == .string("/b"))
        #expect(Self.config.value(at: "vdev_tree.children[2].phys_path") == nil)
        #expect(Self.config.value(at: #"features_for_read["com.delphix:hole_birth"]"#) == .boolean)
        #expect(Self.config.value(at: "hole_array[1]") == .uint64(5))
        #expect(Self.config.string("name") == "rpool")
        #expect(Self.config.uint64("txg") == 28)
        #expect(Self.config.uint64("name") == nil)
    }

    @Test func settingKeepsOrder() throws {
        var c = Self.config
        try c.setValue(.string("/xpvd/xdf@51712:a"), at: "vdev_tree.children[0].phys_path")
        #expect(c.names == Self.config.names)
        #expect(c.value(at: "vdev_tree.children[0].phys_path") == .string("/xpvd/xdf@51712:a"))
        #expect(c.value(at: "vdev_tree.children[1].phys_path") == .string("/b"))
        try c.setValue(nil, at: "vdev_tree.children[0].phys_path")
        #expect(c.list("vdev_tree")?.lists("children")?[0].names == ["guid"])
        var child = try #require(c.list("vdev_tree")?.lists("children")?[1])
        child["phys_path"] = .string("/c")
        try c.setValue(.nvlist(child), at: "vdev_tree.children[1]")
        #expect(c.value(at: "vdev_tree.children[1].phys_path") == .string("/c"))
        #expect(throws: NVPathError.self) { try c.setValue(.uint64(1), at: "vdev_tree.children[1]") }
        try c.setValue(.uint64(9), at: "comment")
        #expect(c.names.last == "comment")
        #expect(throws: NVPathError.self) { try c.setValue(.uint64(1), at: "nope.child") }
    }

    @Test func pathsParseAndPrint() throws {
        let p = try NVPath(parsing: #"vdev_tree.children[3]["a.b"].x"#)
        #expect(p.components == [.key("vdev_tree"), .key("children"), .index(3), .key("a.b"), .key("x")])
        #expect(p.description == #"vdev_tree.children[3]["a.b"].x"#)
        for bad in ["", ".a", "a.", "a[", "a[-1]", "a[x]", "a..b"] {
            #expect(throws: NVPathError.self, "\(bad)") { try NVPath(parsing: bad) }
        }
    }

    @Test func jsonMapping() {
        let json = Self.config.json.rendered()
        #expect(json == #"{"name":"rpool","txg":28,"vdev_tree":{"type":"mirror","children":[{"guid":1,"phys_path":"/a"},{"guid":2,"phys_path":"/b"}]},"features_for_read":{"com.delphix:hole_birth":true},"hole_array":[4,5]}"#)
        #expect(NVList(pairs: [NVPair("g", .uint64(.max))]).json.rendered() == #"{"g":18446744073709551615}"#)
        #expect(JSONValue.string("a\"b\\\n\u{1}").rendered() == #""a\"b\\\n\u0001""#)
    }
}
