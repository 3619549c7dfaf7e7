import ZFSChecksum

/// Checksums of block contents (`zio_checksum_table`): the functions this reader verifies.
enum BlockChecksum {
    /// The checksum of `data` with ZFS checksum function `function`, reading words in `order` (the block's
    /// byte order: the byteswap variants of fletcher are the same sums over swapped words).
    ///
    /// - Throws: ``MOSError`` `.unsupported` for a function other than fletcher2 (6), fletcher4 (7) or
    ///   sha256 (8).
    static func compute(_ data: [UInt8], function: UInt8, order: ByteOrder) throws(MOSError) -> Checksum256 {
        switch BlockPointer.ChecksumFunction(rawValue: function) {
        case .fletcher2: return fletcher2(data, order: order)
        case .fletcher4: return fletcher4(data, order: order)
        case .sha256: return zfsSHA256(data)
        case nil:
            throw MOSError(.unsupported, "checksum \(BlockPointer.checksumName(function)) (\(function)) is not supported by this reader (supported: fletcher2, fletcher4, sha256)")
        }
    }
}

/// Reads blocks of the pool: picks a copy (DVA), reads it from the leaves, verifies its checksum and
/// decompresses it.
public struct PoolBlockReader: Sendable {
    /// The top-level vdevs.
    public var topology: PoolTopology
    /// The leaves that can be read.
    public var devices: LeafReader

    /// Creates a reader over the pool's top-level vdevs and the leaves present.
    public init(topology: PoolTopology, devices: LeafReader) {
        self.topology = topology
        self.devices = devices
    }

    /// The logical contents of the block `bp` points at: `lsize` bytes, zero for a hole.
    ///
    /// Each DVA is tried in turn, and for each DVA each way of reading it (each mirror child); the first
    /// copy whose checksum matches is decompressed and returned.
    ///
    /// - Parameters:
    ///   - bp: the block pointer.
    ///   - location: where the block sits, for messages.
    /// - Throws: ``MOSError`` naming `location` and every DVA tried with its reason: `.checksum` when copies
    ///   were read and none verified, `.unsupported` for a gang block, an encrypted block or an unknown
    ///   compression or checksum, `.missingDevice` when no copy is on the images given.
    public func read(_ bp: BlockPointer, at location: BlockLocation) throws(MOSError) -> [UInt8] {
        func fail(_ code: MOSError.Code, _ message: String, _ attempts: [String] = []) -> MOSError {
            MOSError(code, message, location: location, attempts: attempts)
        }
        let lsize = bp.logicalSize
        if bp.isEmbedded {
            guard bp.embeddedType == 0 else {
                throw fail(.unsupported, "embedded block pointer of type \(bp.embeddedType) (only data, 0, is read)")
            }
            do throws(MOSError) {
                return try Decompression.decompress(bp.embeddedPayload, function: bp.compression, logicalSize: lsize)
            } catch {
                throw fail(error.code, "embedded block pointer: \(error.message)")
            }
        }
        if bp.isHole { return [UInt8](repeating: 0, count: lsize) }
        if bp.usesCrypt {
            throw fail(.unsupported, "the block is encrypted or authenticated (X bit set); this reader does not decrypt")
        }
        guard BlockPointer.ChecksumFunction(rawValue: bp.checksumFunction) != nil else {
            throw fail(.unsupported, "checksum \(BlockPointer.checksumName(bp.checksumFunction)) (\(bp.checksumFunction)) is not supported by this reader (supported: fletcher2, fletcher4, sha256)")
        }
        guard [2, 3, 14, 15].contains(bp.compression) || (5...13).contains(bp.compression) else {
            throw fail(.unsupported, "compression \(BlockPointer.compressionName(bp.compression)) (\(bp.compression)) is not supported by this reader (supported: off, lzjb, gzip-1…9, zle, lz4)")
        }
        let psize = bp.physicalSize
        var attempts: [String] = []
        var sawChecksumFailure = false
        var sawData = false
        for (i, dva) in bp.dvas.enumerated() where !dva.isEmpty {
            let name = "DVA[\(i)]=\(dva)"
            if dva.isGang {
                attempts.append("\(name): gang block, which this reader refuses")
                continue
            }
            let plans: [ReadPlan]
            do throws(MOSError) {
                plans = try topology.plans(vdev: dva.vdev, offset: dva.offset, size: psize, devices: devices)
            } catch {
                attempts.append("\(name): \(error.message)")
                continue
            }
            if plans.isEmpty { attempts.append("\(name): no device of vdev \(dva.vdev) among the images given") }
            for plan in plans {
                let data: [UInt8]
                do {
                    data = try plan.read()
                } catch {
                    attempts.append("\(name) via \(plan.description): read failed: \(error)")
                    continue
                }
                sawData = true
                guard data.count == psize else {
                    attempts.append("\(name) via \(plan.description): read \(data.count) bytes, wanted \(psize)")
                    continue
                }
                let computed = try BlockChecksum.compute(data, function: bp.checksumFunction, order: bp.byteOrder)
                guard computed == bp.checksum else {
                    sawChecksumFailure = true
                    attempts.append("\(name) via \(plan.description): \(BlockPointer.checksumName(bp.checksumFunction)) checksum mismatch: stored \(bp.checksum), contents give \(computed)")
                    continue
                }
                do throws(MOSError) {
                    return try Decompression.decompress(data, function: bp.compression, logicalSize: lsize)
                } catch {
                    attempts.append("\(name) via \(plan.description): \(error.message)")
                }
            }
        }
        if attempts.isEmpty { attempts.append("the block pointer has no DVA") }
        if sawChecksumFailure { throw fail(.checksum, "no copy of the block verifies", attempts) }
        if bp.isGang { throw fail(.unsupported, "gang blocks are not supported by this reader", attempts) }
        if !sawData { throw fail(.missingDevice, "no copy of the block could be read", attempts) }
        throw fail(.malformed, "no copy of the block could be used", attempts)
    }
}
