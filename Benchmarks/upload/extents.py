#!/usr/bin/env python3
"""The data extents of a sparse file, found with SEEK_DATA/SEEK_HOLE, for the upload benchmark's clients.
Run as a script, it reads those extents (and no hole) into the page cache: `extents.py --cache FILE`."""
import os, sys


def data_extents(path):
    """(start, end) byte ranges holding data, in order, and the file's size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos, out = os.fstat(fd).st_size, 0, []
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data past pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            pos = end
        return out, size
    finally:
        os.close(fd)


def cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in data_extents(path)[0]:
            while start < end:
                n = len(os.pread(fd, min(end - start, 1 << 24), start))
                if n == 0:  # the file shrank
                    return
                start += n
    finally:
        os.close(fd)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--cache":
        sys.exit("usage: extents.py --cache FILE")
    cache(sys.argv[2])
