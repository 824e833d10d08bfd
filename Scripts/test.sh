#!/usr/bin/env bash
# The project's test command: every test tier that runs on this machine (Swift Testing and XCTest).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
