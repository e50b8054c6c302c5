#!/bin/bash
# Leave-one-dataset-out (`make lodo`): for each dataset, train on the other two (their own
# writer-disjoint split, head refit, threshold calibrated on their validation writers), then evaluate
# on every writer of the held-out dataset. Outputs under runs/lodo-DATASET/; a finished training is
# skipped, an interrupted one resumes from its checkpoint. Summary: runs/lodo-DATASET/heldout.json.
# LODO_CARD=CARD.json stores the three results in that model card (`python -m bench.lodo_card`;
# `make lodo` sets it to the shipped card). LODO_TRAIN_ARGS adds options to every `sigverify train`
# (a recipe to compare), LODO_OUT changes the output prefix (default runs/lodo), e.g.
#   LODO_TRAIN_ARGS="--ema-decay 0.998 --select-after-head-fit" LODO_OUT=runs/lodo-ema bench/lodo.sh
set -euo pipefail
D=${DATASETS:-../shared/datasets}
EPOCHS=${LODO_EPOCHS:-10}
STEPS=${LODO_STEPS:-80}
read -r -a EXTRA <<< "${LODO_TRAIN_ARGS:-}"
PREFIX=${LODO_OUT:-runs/lodo}
ALL="cedar bhsig260-bengali bhsig260-hindi"
BIN=.venv/bin
for held in $ALL; do
  args=()
  for d in $ALL; do [ "$d" != "$held" ] && args+=(--data "$D/$d"); done
  out=$PREFIX-$held
  if [ ! -f "$out/model.json" ]; then
    echo "=== training without $held ($(date))"
    $BIN/sigverify train "${args[@]}" --out "$out/model.keras" --work-dir "$out/work" \
      --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --quiet --resume ${EXTRA[@]+"${EXTRA[@]}"}
  fi
  $BIN/sigverify fit-head "${args[@]}" --model "$out/model.keras" > /dev/null
  $BIN/sigverify calibrate "${args[@]}" --model "$out/model.keras" | tail -1
  $BIN/sigverify evaluate --data "$D/$held" --model "$out/model.keras" --writers all --json > "$out/heldout.json"
  echo "held out $held:"
  $BIN/sigverify evaluate --data "$D/$held" --model "$out/model.keras" --writers all | tail -2
done
if [ -n "${LODO_CARD:-}" ]; then
  $BIN/python -m bench.lodo_card "$PREFIX" "$LODO_CARD" --command "make lodo"
fi
