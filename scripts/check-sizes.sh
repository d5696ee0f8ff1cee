#!/usr/bin/env bash
# The size bars of the tree: no C++ or CUDA file over 450 lines, and no function over 80
# lines (clang-tidy's readability-function-size over the release build's compile
# commands; CUDA files are counted by lines only). Non-zero when a bar is broken.
#   bash scripts/check-sizes.sh [BUILD_DIR]     (default build/release, configured)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
status=0
while read -r lines file; do
  [ "$file" = total ] && continue
  if [ "$lines" -gt 450 ]; then
    echo "$file: $lines lines (more than 450)"
    status=1
  fi
done < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' '*.cuh' | xargs wc -l)
if [ ! -f "$build/compile_commands.json" ]; then
  echo "check-sizes: $build/compile_commands.json not found (cmake --preset release writes it)" >&2
  exit 2
fi
sources=$(git ls-files '*.cpp' | grep -v '^tests/include-rules/' || true)
out=$(clang-tidy -p "$build" --quiet -checks='-*,readability-function-size' \
        -config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 80}]}' \
        $sources 2>/dev/null | grep -E 'warning: function .* exceeds recommended size' || true)
if [ -n "$out" ]; then
  echo "$out"
  status=1
fi
[ "$status" = 0 ] && echo "check-sizes: no file over 450 lines, no function over 80 lines"
exit "$status"
