#!/usr/bin/env bash
# The size bars of the tree (issue 20): no C++ or CUDA source over 450 lines, and no
# function over 80 lines (scripts/function-sizes.py, counted from the signature's first
# line to the closing brace). Non-zero when a bar is broken; run by ctest as source_sizes.
#   bash scripts/check-sizes.sh
#   ATTNBENCH_FUNCTION_LINES=40 bash scripts/check-sizes.sh   (a lower limit shows that it sees functions)
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${ATTNBENCH_FUNCTION_LINES:-80}
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' '*.cuh' | grep -v '^tests/include-rules/')
status=0
for file in "${sources[@]}"; do
  lines=$(wc -l < "$file")
  if [ "$lines" -gt 450 ]; then
    echo "$file: $lines lines (more than 450)"
    status=1
  fi
done
python3 scripts/function-sizes.py --limit "$limit" "${sources[@]}" || status=1
[ "$status" = 0 ] && echo "check-sizes: ${#sources[@]} sources, none over 450 lines, no function over $limit lines"
exit "$status"
