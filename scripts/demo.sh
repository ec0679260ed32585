#!/usr/bin/env bash
# `make demo`: prepare the embedded demo corpus, train A-VAE, AV-CVAE and MIN-VAE briefly, enhance one
# held-out noisy clip, then evaluate the main methods on a balanced subset of the test mixtures and print the table.
#
# Knobs (environment): DEMO_EPOCHS_AVAE / _AVCVAE / _VVAE / _MINVAE, DEMO_LR, DEMO_LIMIT (test files),
# DEMO_ITERATIONS (EM iterations), DEMO_METHODS (comma list; "all": every method), PYRO_MINVAE_CACHE (where
# everything is written).
# Settings measured on the full demo corpus (242k training frames, 1 torch thread): lr 3e-4 beats 1e-3 for every
# model; A-VAE levels off after ~10 epochs (8-14 s each); MIN-VAE (pooled lips encoder) costs ~25-35 s per epoch
# and AV-CVAE ~70-90 s, both still improving after the demo's epochs (docs/results-discussion.md has the long
# runs' curves and the settings that give the best models).
set -euo pipefail
cd "$(dirname "$0")/.."
PM=".venv/bin/pyro-minvae"
CACHE="${PYRO_MINVAE_CACHE:-$HOME/.cache/pyro-minvae}"
RUNS="$CACHE/runs/demo"
LR="${DEMO_LR:-3e-4}"
LIMIT="${DEMO_LIMIT:-30}"
# One torch thread per process: measured faster than two on a loaded 2-core machine, and evaluation
# already runs two worker processes.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }
t0=$(date +%s)

step "1/5 prepare the demo corpus"
$PM prepare demo --stats

step "2/5 train A-VAE, AV-CVAE, V-VAE and MIN-VAE (lr $LR; MIN-VAE warm-started from A-VAE + V-VAE as in the paper)"
train() {  # name epochs args...; skipped when the run already reached its epochs
  local name=$1 epochs=$2; shift 2
  if [ -f "$RUNS/$name/summary.json" ] && [ -f "$RUNS/$name/best.pt" ]; then
    echo "$name: already trained ($RUNS/$name), skipping"; return; fi
  local again=()  # a demo stopped mid-training continues from its last epoch (or restarts before the first)
  if [ -f "$RUNS/$name/last.pt" ]; then again=(--resume); elif [ -d "$RUNS/$name" ]; then again=(--overwrite); fi
  ${EXEC:-} $PM train "$@" --out "$RUNS/$name" --epochs "$epochs" --lr "$LR" --no-progress "${again[@]}"
}
# AV-CVAE needs none of the others: it trains beside them, one torch thread each on the two cores (the chain
# A-VAE -> V-VAE -> MIN-VAE takes about as long as AV-CVAE alone). Its log goes to a file, printed when it ends.
# A background command ignores Ctrl-C, so the EXIT trap stops it with SIGTERM, which `train` handles like Ctrl-C
# (finished epochs kept in last.pt; the next `make demo` resumes). EXEC=exec makes its PID the trainer's own.
mkdir -p "$RUNS"
AVCVAE_LOG="$RUNS/avcvae-train.log"
EXEC=exec train avcvae "${DEMO_EPOCHS_AVCVAE:-3}" --model avcvae > "$AVCVAE_LOG" 2>&1 &
AVCVAE_PID=$!
trap 'kill -TERM "$AVCVAE_PID" 2>/dev/null || true' EXIT
train avae "${DEMO_EPOCHS_AVAE:-6}" --model avae
train vvae "${DEMO_EPOCHS_VVAE:-3}" --model vae --encoders lips --init-from "$RUNS/avae/best.pt"
train minvae "${DEMO_EPOCHS_MINVAE:-6}" --model minvae --encoders audio,lips \
  --init-from "$RUNS/avae/best.pt" --init-from "$RUNS/vvae/best.pt"
echo "waiting for AV-CVAE (trained alongside; log $AVCVAE_LOG)"
avcvae_status=0
wait "$AVCVAE_PID" || avcvae_status=$?
trap - EXIT
sed 's/^/  avcvae | /' "$AVCVAE_LOG"
if [ "$avcvae_status" -ne 0 ]; then
  echo "error: AV-CVAE training failed (exit $avcvae_status); its log: $AVCVAE_LOG" >&2
  exit "$avcvae_status"
fi

step "3/5 enhance one held-out noisy clip with MIN-VAE (visual initialisation)"
MANIFEST="$CACHE/corpora/demo/manifest.jsonl"
read -r NOISY LIPS < <(.venv/bin/python - "$MANIFEST" <<'PY'
import json, sys
from pathlib import Path
m = Path(sys.argv[1])
for line in m.read_text().splitlines():
    r = json.loads(line)
    if r.get("kind") == "mixture" and r["split"] == "test" and r.get("snr_db") == 0:
        print(m.parent / r["audio"], m.parent / r["lips"]); break
PY
)
$PM enhance --checkpoint "$RUNS/minvae/best.pt" "$NOISY" --video "$LIPS" -o "$RUNS/enhanced_example.wav" \
  --overwrite ${DEMO_ITERATIONS:+--iterations $DEMO_ITERATIONS}  # the demo's own file: a second run replaces it
echo "wrote $RUNS/enhanced_example.wav (from $NOISY)"

step "4/5 evaluate on $LIMIT test mixtures (speakers unseen in training)"
# Every method but the four slowest variants (MCEM ensemble, the jump kernel with and without the paper's loop, and
# MIN-VAE's published variational loop, a quarter of the rest's time on its own; docs/results.md has them all), so
# that the demo keeps a margin under 30 minutes on a slow 2-core machine: DEMO_METHODS=all evaluates all 16.
METHODS="${DEMO_METHODS:-noisy,spectral-gating,spectral-gating-stationary,wiener-oracle,avae-mcem,avae-fast,avcvae-mcem,avcvae-fast,minvae-mcem,minvae-fast,minvae-audio-init,ensemble-fast}"
[ "$METHODS" = all ] && METHODS=""
evaluate() {
  $PM evaluate --out "$RUNS/evaluation" --limit "$LIMIT" --no-progress \
    --checkpoint avae="$RUNS/avae/best.pt" --checkpoint avcvae="$RUNS/avcvae/best.pt" \
    --checkpoint minvae="$RUNS/minvae/best.pt" --ensemble avae,minvae,avcvae ${METHODS:+--methods "$METHODS"} "$@"
}
# A second demo resumes the evaluation (nothing left to do). One whose folder holds results of other method
# definitions or models (a newer version's defaults, re-trained models) is refused with exit 2: the changed methods
# are then evaluated again (--redo-changed), and if other settings differ too, everything (--restart). Each retry
# follows what the refusal itself suggests; any other error (exit 2 too, e.g. an unknown DEMO_METHODS name) stops.
EVAL_ERR="$(mktemp)"
trap 'rm -f "$EVAL_ERR"' EXIT
try_evaluate() {  # evaluate "$@", its error output shown and also kept in $EVAL_ERR
  local status=0
  evaluate "$@" 2> >(tee "$EVAL_ERR" >&2) || status=$?
  wait $! 2>/dev/null || true  # tee has written everything
  return "$status"
}
rc=0; try_evaluate || rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--redo-changed" "$EVAL_ERR"; then
  echo "some results in $RUNS/evaluation came from other method definitions or models: evaluating those again (--redo-changed)"
  rc=0; try_evaluate --redo-changed || rc=$?
fi
if [ "$rc" -eq 2 ] && grep -q -- "--restart" "$EVAL_ERR"; then
  echo "the results in $RUNS/evaluation came from other settings: evaluating again (--restart)"
  evaluate --restart
elif [ "$rc" -ne 0 ]; then exit "$rc"; fi

step "5/5 done in $(( $(date +%s) - t0 )) s; tables and figures in $RUNS/evaluation"
