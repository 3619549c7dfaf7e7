#!/bin/bash
# Build and test Examples/GoldenImage, a package that depends on zlabel by path and uses only its public API
# (the ZLabel product: no HTTP stack is built). A change that breaks the public API for outside users fails here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
example=Examples/GoldenImage
swift build --package-path "$example" --build-tests
swift test --package-path "$example" --skip-build
