#!/usr/bin/env python3
"""Writes seed corpora for the container fuzz targets from a real fixture, packed by qemu-img and compressors.

    python3 make-container-seeds.py OUTDIR

The first 2 MiB of Fixtures/rpool-kvm.img (labels 0 and 1, real non-zero data) become a small raw disk, which
qemu-img (Debian qemu-utils) converts to qcow2 (v3, compressed, v2, extended L2), VMDK (monolithicSparse,
streamOptimized, monolithicFlat's descriptor), VHD (fixed, dynamic) and VHDX (fixed, dynamic), and zstd, xz
and gzip compress. Each output is written in the sparse input format of Sources/FuzzContainerSupport (size,
then the non-zero 512-byte runs as pieces) into OUTDIR/qcow2, vmdk, vhd, vhdx and compressed.
Exits 2 when a tool is missing: CI installs them (scripts/setup-test-env.sh).
"""
import lzma
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
FIXTURE = HERE.parent / "Fixtures" / "rpool-kvm.img.xz"
RAW_SIZE = 2 << 20


def sparse(data):
    """The fuzz input for a container file: u32 size, then (u32 offset, u16 length, bytes) pieces."""
    out = bytearray(struct.pack("<I", len(data)))
    i = 0
    while i < len(data):
        if not any(data[i:i + 512]):
            i += 512
            continue
        j = i
        while j < len(data) and any(data[j:j + 512]) and j - i < 65535 - 512:
            j += 512
        piece = data[i:min(j, len(data))]
        out += struct.pack("<IH", i, len(piece)) + piece
        i = j
    return bytes(out)


def main():
    out = pathlib.Path(sys.argv[1])
    for tool in ("qemu-img", "zstd", "xz", "gzip"):
        if shutil.which(tool) is None:
            print(f"make-container-seeds: {tool} not found (scripts/setup-test-env.sh installs it)", file=sys.stderr)
            sys.exit(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        raw = tmp / "disk.img"
        with lzma.open(FIXTURE) as f:
            raw.write_bytes(f.read(RAW_SIZE))
        packings = {
            "qcow2": [("v3", ["qcow2"]), ("compressed", ["qcow2", "-c"]), ("v2", ["qcow2", "-o", "compat=0.10"]),
                      ("extended-l2", ["qcow2", "-o", "extended_l2=on"]),
                      ("small-clusters", ["qcow2", "-o", "cluster_size=4096"])],
            "vmdk": [("sparse", ["vmdk", "-o", "subformat=monolithicSparse"]),
                     ("stream", ["vmdk", "-o", "subformat=streamOptimized"]),
                     ("flat", ["vmdk", "-o", "subformat=monolithicFlat"])],
            "vhd": [("fixed", ["vpc", "-o", "subformat=fixed"]), ("dynamic", ["vpc", "-o", "subformat=dynamic"])],
            "vhdx": [("fixed", ["vhdx", "-o", "subformat=fixed"]), ("dynamic", ["vhdx", "-o", "subformat=dynamic"])],
        }
        for folder, items in packings.items():
            (out / folder).mkdir(parents=True, exist_ok=True)
            for name, args in items:
                target = tmp / f"{folder}-{name}.{'vmdk' if folder == 'vmdk' else 'img'}"
                subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", *args, str(raw), str(target)], check=True)
                data = target.read_bytes()
                if folder == "vmdk":
                    # FuzzVMDK: byte 0 even = sparse extent in the sparse format, odd = descriptor text.
                    seed = (b"\x01" + data.rstrip(b"\0 ")) if name == "flat" else b"\x00" + sparse(data)
                else:
                    seed = sparse(data)
                (out / folder / name).write_bytes(seed)
        (out / "compressed").mkdir(parents=True, exist_ok=True)
        for index, (name, command) in enumerate([("zstd", "zstd -q -c"), ("xz", "xz -0 -T1 -c"), ("gzip", "gzip -1 -c")]):
            data = subprocess.run(command.split(), input=raw.read_bytes()[:256 << 10], capture_output=True,
                                  check=True).stdout
            (out / "compressed" / name).write_bytes(bytes([index]) + sparse(data))
    for folder in ("qcow2", "vmdk", "vhd", "vhdx", "compressed"):
        files = list((out / folder).glob("*"))
        print(f"make-container-seeds: {len(files):3d} seeds, {sum(f.stat().st_size for f in files):9d} bytes in {out / folder}")


if __name__ == "__main__":
    main()
