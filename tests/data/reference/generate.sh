#!/usr/bin/env bash
# Writes the reference run files of tests/python/test_reference.py with the learnflow binary
# given: BIN=/path/to/learnflow tests/data/reference/generate.sh. The files here were made by
# learnflow at commit 372f09d, the last before the batch axis (issue 14), built in Release.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=tests/data/reference
while IFS='|' read -r name config overrides; do
  name=$(echo "$name" | xargs); config=$(echo "$config" | xargs)
  [[ -z "$name" || "$name" == \#* ]] && continue
  args=()
  for o in $overrides; do args+=(--set "$o"); done
  "$BIN" run "$config" -o "$out/$name.h5" --quiet --threads 1 "${args[@]}"
done < "$out/runs.txt"
