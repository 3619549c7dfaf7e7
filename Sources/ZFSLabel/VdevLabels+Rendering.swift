public import NVList
import ZFSChecksum

extension VdevLabels {
    /// The labels as one member of the `vdevs` array of `zlabel inspect --json`:
    /// `{"offset","size","labels":[{"index","offset","status","byte_order","config"}],"active_uberblock"}`.
    ///
    /// - Parameters:
    ///   - offset: where the leaf starts in the image; label offsets are relative to it.
    ///   - includeUberblocks: add every slot with an uberblock magic to each label (`"uberblocks"`).
    public func json(offset: UInt64, includeUberblocks: Bool = false) -> JSONValue {
        var members: [(String, JSONValue)] = [("offset", .uint(offset)), ("size", .uint(vdevSize))]
        members.append(("labels", .array(labels.map { $0.json(includeUberblocks: includeUberblocks) })))
        if let active = activeUberblock {
            members.append(("active_uberblock", .object([
                ("txg", .uint(active.uberblock.txg)),
                ("timestamp", .uint(active.uberblock.timestamp)),
                ("guid_sum", .uint(active.uberblock.guidSum)),
                ("label", .uint(UInt64(active.label))),
                ("slot", .uint(UInt64(active.slot))),
                ("version", .uint(active.uberblock.version)),
                ("version_supported", .bool(active.uberblock.hasSupportedVersion)),
                ("mmp_sequence", .uint(active.uberblock.mmpSequence)),
            ])))
        } else {
            members.append(("active_uberblock", .null))
        }
        return .object(members)
    }

    /// The labels as `zdb -l` prints them (`-u` adds uberblocks): each distinct label once, with the
    /// indices of the labels that share its content.
    public func zdbText(includeUberblocks: Bool = false) -> String {
        var out = ""
        for group in identicalGroups {
            let label = labels[group[0]]
            out += "------------------------------------\n"
            out += "LABEL \(label.index)"
            if label.status == .checksumMismatch { out += " (Bad label cksum)" }
            out += "\n------------------------------------\n"
            if let config = label.config {
                Self.appendZdb(config, to: &out, indent: 1)
            } else {
                out += "failed to unpack label \(label.index): \(label.problem ?? "unknown")\n"
            }
            if includeUberblocks {
                for slot in label.uberblocks where slot.uberblock != nil {
                    let ub = slot.uberblock!
                    out += "    Uberblock[\(slot.index)]\n"
                    out += "\tmagic = \(Self.hex16(Uberblock.magicValue))\n"
                    out += "\tversion = \(ub.version)\n"
                    out += "\ttxg = \(ub.txg)\n"
                    out += "\tguid_sum = \(ub.guidSum)\n"
                    out += "\ttimestamp = \(ub.timestamp) UTC\n"
                    out += "\tmmp_magic = \(Self.hex16(ub.mmpMagic))\n"
                    out += "\tmmp_delay = \(ub.mmpDelay)\n"
                    out += "\tcheckpoint_txg = \(ub.checkpointTxg)\n"
                    out += "\tchecksum = \(slot.checksum.isValid ? "valid" : "BAD")\n"
                }
            }
            out += "    labels = " + group.map(String.init).joined(separator: " ") + " \n"
        }
        return out
    }

    private static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    private static func appendZdb(_ list: NVList, to out: inout String, indent: Int) {
        let pad = String(repeating: "    ", count: indent)
        for pair in list.pairs {
            switch pair.value {
            case .boolean:
                out += "\(pad)\(pair.name)\n"
            case .nvlist(let child):
                out += "\(pad)\(pair.name):\n"
                appendZdb(child, to: &out, indent: indent + 1)
            case .nvlistArray(let children):
                for (i, child) in children.enumerated() {
                    out += "\(pad)\(pair.name)[\(i)]:\n"
                    appendZdb(child, to: &out, indent: indent + 1)
                }
            case .string(let s):
                out += "\(pad)\(pair.name): '\(s)'\n"
            default:
                out += "\(pad)\(pair.name): \(pair.value.json.rendered())\n"
            }
        }
    }
}

extension Label {
    /// One element of `labels` in `zlabel inspect --json`.
    public func json(includeUberblocks: Bool = false) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("index", .uint(UInt64(index))),
            ("offset", .uint(offset)),
            ("status", .string(status.rawValue)),
            ("byte_order", byteOrder.map { .string($0.rawValue) } ?? .null),
        ]
        if let problem {
            members.append(("problem", .string(problem)))
            if let problemOffset { members.append(("problem_offset", .uint(problemOffset))) }
        }
        if let config { members.append(("config", config.json)) }
        members.append(("bootenv", bootenv.json))
        if includeUberblocks {
            members.append(("uberblocks", .array(uberblocks.compactMap { slot in
                guard let ub = slot.uberblock else { return nil }
                return .object([
                    ("slot", .uint(UInt64(slot.index))), ("offset", .uint(slot.offset)),
                    ("checksum_valid", .bool(slot.checksum.isValid)), ("byte_order", .string(ub.byteOrder.rawValue)),
                    ("version", .uint(ub.version)), ("txg", .uint(ub.txg)), ("guid_sum", .uint(ub.guidSum)),
                    ("timestamp", .uint(ub.timestamp)), ("mmp_sequence", .uint(ub.mmpSequence)),
                ])
            })))
        }
        return .object(members)
    }
}

extension Bootenv {
    /// The bootenv block as JSON: its checksum verdict and contents.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("offset", .uint(offset))]
        switch checksum {
        case .valid: members.append(("checksum", .string("valid")))
        case .mismatch: members.append(("checksum", .string("mismatch")))
        case .noMagic: members.append(("checksum", .string("absent")))
        }
        switch contents {
        case .empty: members.append(("contents", .string("empty")))
        case .raw(let text): members += [("contents", .string("raw")), ("text", .string(text))]
        case .nvlist(let list): members += [("contents", .string("nvlist")), ("nvlist", list.json)]
        case .unknown(let version): members += [("contents", .string("unknown")), ("version", .uint(version))]
        }
        return .object(members)
    }
}
