#!/bin/sh
# Regenerate the example traces with `heaplint synth`.  The generator is
# deterministic: the same heaplint version writes the same bytes every time,
# so a diff after running this means the generator (or the format) changed.
#
#   examples/regenerate.sh            (uses `heaplint` from PATH)
#   HEAPLINT="python -m heaplint.engine" examples/regenerate.sh
set -eu
cd "$(dirname "$0")"
HEAPLINT=${HEAPLINT:-heaplint}

# A two-process service: netsvc.exe leaks request clones on its process heap
# (a steady leak from one stack) beside healthy LFH churn, a session cache and
# grown buffers; render.exe is healthy (texture cache, frame batches, staging
# bursts).  The truth file says what was injected and which rules should fire.
$HEAPLINT synth --preset leak --seed 1 --events 6000 --duration 60s \
    -o leaky-service.jsonl.gz --truth leaky-service.truth.json
