#!/usr/bin/env bash
# Measures the semantic cache on banking77 (DESIGN.md §6) with `eval-cache`: the 10,003 train
# queries, then the 3,080 test queries, replayed through an empty cache with the local MiniLM
# embedder. Writes the JSON report (no per-row data) to bench/results/eval-cache-banking77.json
# and prints a summary. Extra arguments go to eval-cache (e.g. --threshold 0.82).
#
#   bench/eval-cache-banking77.sh            # about 5 minutes of embedding on 2 cores
#   BANKING77_DIR=/path/to/banking77 bench/eval-cache-banking77.sh
set -euo pipefail
cd "$(dirname "$0")/.."

data="${BANKING77_DIR:-data/banking77}"
out=bench/results/eval-cache-banking77.json
mkdir -p "$(dirname "$out")"

npx projen bundle >/dev/null
node assets/lambdas/cli/main/index.mjs eval-cache \
  --queries "$data/train.csv" --queries "$data/test.csv" --json "$@" | tail -n 1 > "$out.tmp"
# Indented, so that a re-run shows as a readable diff.
node -e 'const fs = require("fs"); fs.writeFileSync(process.argv[2], JSON.stringify(JSON.parse(fs.readFileSync(process.argv[1], "utf8")), null, 2) + "\n")' "$out.tmp" "$out"
rm "$out.tmp"

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const pct = (x) => (100 * x).toFixed(2) + "%";
console.log(`${r.rows} rows, ${r.labels} labels, ${r.model}; margin ${r.margin}, rival support ${r.rivalSupport}, neighbours ${r.neighbours}`);
console.log(`with the guard at ${r.threshold}: hitRate ${pct(r.hitRate)}, wrongHitRate ${pct(r.wrongHitRate)} (recommended ${r.recommendedThreshold})`);
const w = r.withoutGuard;
console.log(`without the guard at ${w.threshold}: hitRate ${pct(w.hitRate)}, wrongHitRate ${pct(w.wrongHitRate)}; at ${r.threshold}: ${pct(w.atGuardThreshold.hitRate)}, ${pct(w.atGuardThreshold.wrongHitRate)}`);
for (const s of r.sources) console.log(`  ${s.source}: ${pct(s.hitRate)} / ${pct(s.wrongHitRate)} (without the guard ${pct(s.withoutGuard.hitRate)} / ${pct(s.withoutGuard.wrongHitRate)})`);
console.log(`embedded in ${r.timings.embedSeconds} s, replayed in ${r.timings.replaySeconds} s -> ${process.argv[1]}`);
' "$out"
