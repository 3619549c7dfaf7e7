#!/usr/bin/env python3
"""Summarises package-benchmark's text output: per benchmark the median and best wall time, mallocs, and
for every "decode X" / "encode X" pair the ratio of NVList to libnvpair (below 1.00: NVList is faster), and
for every "X side by side" / "X swift-crypto" pair the ratio of SHA256Lanes to swift-crypto.

    swift package --package-path Benchmarks benchmark --no-progress --time-units nanoseconds | tee out.txt
    python3 Benchmarks/ratios.py out.txt
"""
import re
import sys

UNITS = {"ns": 1, "μs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def parse(text):
    results, name = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("│", "╒", "╞", "├", "╘", "=", "[")) and "│" not in stripped:
            name = stripped
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if name is None or len(cells) < 9:
            continue
        metric = cells[0]
        m = re.match(r"Time \(wall clock\) \((\w+)\)", metric)
        if m and m.group(1) in UNITS:
            scale = UNITS[m.group(1)]
            results.setdefault(name, {}).update(p0=float(cells[1]) * scale, p50=float(cells[3]) * scale)
        elif metric.startswith("Malloc (total)"):
            results.setdefault(name, {})["mallocs"] = cells[3]
    return results


def main():
    text = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else sys.stdin.read()
    results = parse(text)
    print(f"{'benchmark':52} {'p50 ns':>10} {'best ns':>10} {'mallocs':>8}")
    for name, r in results.items():
        if "p50" in r:
            print(f"{name:52} {r['p50']:10.0f} {r['p0']:10.0f} {r.get('mallocs', ''):>8}")
    print_ratios(results, "NVList / libnvpair", " NVList", " libnvpair")
    print_ratios(results, "side by side / swift-crypto", " side by side", " swift-crypto")


def print_ratios(results, title, ours, theirs):
    """For every benchmark named X + ours with a baseline X + theirs: the time ratios, median and best."""
    print()
    print(f"{title + ' (time ratio)':52} {'p50':>10} {'best':>10}")
    for name, r in results.items():
        if name.endswith(ours):
            base = name[: -len(ours)]
            other = results.get(base + theirs)
            if other and "p50" in r and "p50" in other:
                print(f"{base:52} {r['p50'] / other['p50']:10.2f} {r['p0'] / other['p0']:10.2f}")


if __name__ == "__main__":
    main()
