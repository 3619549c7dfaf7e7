#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets, taken from the real-ZFS images in ../Fixtures.

    python3 make-seeds.py OUTDIR

OUTDIR gets five folders, one per target:
  nvlist/      packed config nvlists from label 0 of every pool image (and its bootenv nvlist, if any), plus
               the libnvpair vectors in Fixtures/nvlist/ (every data type, and strings that are not UTF-8);
  label/       label descriptions in FuzzLabel's input format (see Sources/FuzzLabel/main.swift);
  partitions/  the table sectors of every partitioned disk image in FuzzPartitions' sparse-disk format, and
               the first sectors of a few disks as raw images;
  http/        FuzzHTTPResponse inputs: a few responses of each framing (length, chunked with extensions and
               trailers, until close, interim answers, 204), fed whole and in small pieces;
  mos/         FuzzMOS inputs: the root block pointers of real uberblocks (both byte orders, each followed by
               the leaf bytes around it), zlib and zle streams of real label bytes, and one short input per
               parser.
Only the standard library is used. The seeds are regenerated on every run of run.sh and are not committed.
"""
import bz2
import hashlib
import lzma
import pathlib
import struct
import sys
import zlib

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "Fixtures"

LABEL = 256 * 1024
BOOTENV_OFF, BOOTENV_SIZE = 0x2000, 8 * 1024
CONFIG_OFF, CONFIG_SIZE = 0x4000, 112 * 1024
CONFIG_CAPACITY = CONFIG_SIZE - 40
RING_OFF, RING_SIZE = 0x20000, 128 * 1024
ZEC_MAGIC = 0x0210DA7AB10C7A11
UB_MAGIC = 0x00BAB10C


def load(path):
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".bz2":
        return bz2.decompress(data)
    return data


def trimmed(block, align=4):
    n = len(block.rstrip(b"\0"))
    return block[: (n + align - 1) // align * align]


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}").write_bytes(data)


def byte_order(block):
    """'<' or '>' from the embedded checksum magic at the block's tail, else None."""
    tail = block[-40:-32]
    if tail == struct.pack("<Q", ZEC_MAGIC):
        return "<"
    if tail == struct.pack(">Q", ZEC_MAGIC):
        return ">"
    return None


def slot_shift(ring):
    """The largest slot shift (10...13) that puts every uberblock magic found on a slot boundary."""
    offsets = [
        o for o in range(0, len(ring), 1024)
        if ring[o:o + 8] in (struct.pack("<Q", UB_MAGIC), struct.pack(">Q", UB_MAGIC))
    ]
    for shift in (13, 12, 11):
        if offsets and all(o % (1 << shift) == 0 for o in offsets):
            return shift
    return 10


def label_seed(image, labels=2, ring_limit=RING_SIZE):
    label = image[:LABEL]
    bootenv = trimmed(label[BOOTENV_OFF:BOOTENV_OFF + BOOTENV_SIZE - 40])
    area = label[CONFIG_OFF:CONFIG_OFF + CONFIG_SIZE]
    config = trimmed(area[:CONFIG_CAPACITY])
    config = config + b"\0" * min(64, CONFIG_CAPACITY - len(config))
    ring = label[RING_OFF:RING_OFF + RING_SIZE]
    shift = slot_shift(ring)
    ring = trimmed(ring[:ring_limit], 1 << shift)
    order = byte_order(area) or "<"
    flags = 1 | 2 | (4 if bootenv else 0) | (8 if order == ">" else 0) | ((labels - 1) << 4) | ((shift - 10) << 6)
    header = struct.pack("<BQHI", flags & 0xFF, len(image), len(bootenv), len(config))
    return header + bootenv + config + ring, config, bootenv


def sectors(image, start, count, sector=512):
    """Extents of the non-zero sectors in [start, start + count * sector), adjacent ones merged."""
    extents = []
    for lba in range(count):
        off = start + lba * sector
        chunk = image[off:off + sector]
        if not chunk.strip(b"\0"):
            continue
        if extents and extents[-1][0] + len(extents[-1][1]) == off and len(extents[-1][1]) + sector <= 0xFFFF:
            extents[-1] = (extents[-1][0], extents[-1][1] + chunk)
        else:
            extents.append((off, chunk))
    return extents


def sparse_seed(size, extents):
    out = bytearray([1]) + struct.pack("<Q", size)
    for off, data in extents:
        out += struct.pack("<QH", off, len(data)) + data
    return bytes(out)


def partition_seeds(image):
    size = len(image)
    extents = sectors(image, 0, 48) + sectors(image, 0, 6, 4096)[1:]
    extents += sectors(image, max(0, size - 40 * 512), 40)
    if image[510:512] == b"\x55\xaa":
        for i in range(4):
            entry = image[446 + 16 * i:462 + 16 * i]
            lba, count = struct.unpack("<II", entry[8:16])
            if entry[4] != 0 and lba and lba * 512 < size:
                extents += sectors(image, lba * 512, 16)  # an SMI label sits in the partition's sector 1
    return sparse_seed(size, extents), b"\0" + image[:34 * 512]


def mos_seeds(image):
    """FuzzMOS inputs from one image: [parser, flags, logical size (LE u16)] + payload."""
    seeds = []
    ring = image[RING_OFF:RING_OFF + RING_SIZE]
    step = 1 << slot_shift(ring)
    for o in range(0, len(ring), step):
        magic = ring[o:o + 8]
        if magic not in (struct.pack("<Q", UB_MAGIC), struct.pack(">Q", UB_MAGIC)):
            continue
        big = magic == struct.pack(">Q", UB_MAGIC)
        rootbp = ring[o + 40:o + 168]  # ub_rootbp follows magic, version, txg, guid_sum, timestamp
        # The fuzz leaf starts at byte 4 MiB of the vdev, where DVA offset 0 lands.
        leaf = image[4 << 20:(4 << 20) + 16384]
        seeds.append(bytes([0, 1 if big else 0, 0, 0]) + rootbp + leaf)
        break
    chunk = image[CONFIG_OFF:CONFIG_OFF + 4096]
    size = struct.pack("<H", len(chunk))
    seeds.append(bytes([4, 0]) + size + zlib.compress(chunk, 1))
    # zle: runs of literal bytes (n-1 < 64 in the first byte) and zero runs (first byte >= 64).
    zle = bytearray()
    for i in range(0, 512, 64):
        part = chunk[i:i + 64].rstrip(b"\0")
        if part:
            zle += bytes([len(part) - 1]) + part
        zle += bytes([64 + 3])
    seeds.append(bytes([3, 0]) + struct.pack("<H", 4096) + bytes(zle))
    return seeds


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else HERE / ".corpus" / "seeds")
    nvlist, label, partitions, mos = out / "nvlist", out / "label", out / "partitions", out / "mos"
    for parser in range(9):  # one short input per parser: every switch arm is reached from the start
        write(mos, f"parser-{parser}", bytes([parser, 0, 0, 2]) + bytes(range(64)))
    for vector in sorted((FIXTURES / "nvlist").glob("*.xdr")):
        write(nvlist, vector.stem, vector.read_bytes())
    images = sorted(p for p in FIXTURES.glob("*") if p.suffix in (".xz", ".bz2"))
    if not images:
        print(f"make-seeds: no fixture images in {FIXTURES}", file=sys.stderr)
    for path in images:
        name = path.name.split(".")[0]
        image = load(path)
        if name.startswith("disk-"):
            sparse, raw = partition_seeds(image)
            write(partitions, name, sparse)
            write(partitions, name + "-raw", raw)
            continue
        seed, config, bootenv = label_seed(image)
        write(label, name, seed)
        # Two labels keep each execution cheap; the fuzzer flips the count bits to reach four.
        small, _, _ = label_seed(image, labels=1, ring_limit=8 * 1024)
        write(label, name + "-8k", small)
        write(nvlist, name, config)
        if bootenv[:8] == struct.pack(">Q", 1):  # VB_NVLIST: a packed nvlist follows the version word
            write(nvlist, name + "-bootenv", bootenv[8:])
        write(partitions, name + "-bare", sparse_seed(len(image), sectors(image, 0, 2)))
        for i, seed in enumerate(mos_seeds(image)):
            write(mos, f"{name}-{i}", seed)
    http = out / "http"
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nx-amzn-ErrorType: ValidationException\r\nContent-Length: 0\r\n\r\n",
    ]
    for i, r in enumerate(responses):
        for flags, piece in ((2, 0), (4, 3), (7, 1)):
            write(http, f"response-{i}-{flags}-{piece}", bytes([flags, piece]) + r)
    for folder in (nvlist, label, partitions, mos, http):
        files = list(folder.glob("*")) if folder.exists() else []
        print(f"make-seeds: {len(files):3d} seeds, {sum(f.stat().st_size for f in files):9d} bytes in {folder}")


if __name__ == "__main__":
    main()
