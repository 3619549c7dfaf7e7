#!/bin/bash
# Build the DocC documentation of every library module (the label side, and the ZLabelEC2 product's) with
# warnings as errors, so a broken symbol link or an unresolvable doc comment reference fails CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
targets=(NVList BlockHashing ZFSChecksum ZFSLabel DiskPartitions BootTargets DiskContainers RawIO ZFSImage ZFSMOS ZLabel HTTPWire AWSCore EBSUpload EC2AMI EC2Publish)
args=()
for target in "${targets[@]}"; do args+=(--target "$target"); done
swift package generate-documentation "${args[@]}" --warnings-as-errors
echo "docs: ${#targets[@]} modules built without warnings"
