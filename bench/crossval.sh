#!/bin/bash
# Cross-validation of a training recipe over writer folds (`make crossval`): the card split's train and
# validation writers (test writers untouched) are cut into CV_FOLDS folds; each run trains on all but
# one fold and validates on it, so every one of those writers is a validation writer once. Outputs
# under runs/cv-foldK/ (CV_OUT changes the prefix); a finished run is skipped, an interrupted one
# resumes from its checkpoint. CV_TRAIN_ARGS adds options (the recipe), CV_EPOCHS / CV_STEPS change the
# length (default: the shipped recipe's). Then `python -m bench.crossval PREFIX [OTHER_PREFIX]` scores
# each fold's best and last epoch with the service's rule and compares two recipes fold by fold, e.g.
#   CV_TRAIN_ARGS="--ema-decay 0.998" CV_OUT=runs/cv-ema bench/crossval.sh
set -euo pipefail
D=${DATASETS:-../shared/datasets}
FOLDS=${CV_FOLDS:-4}
EPOCHS=${CV_EPOCHS:-24}
STEPS=${CV_STEPS:-100}
read -r -a EXTRA <<< "${CV_TRAIN_ARGS:-}"
PREFIX=${CV_OUT:-runs/cv}
BIN=.venv/bin
args=(--data "$D/cedar" --data "$D/bhsig260-bengali" --data "$D/bhsig260-hindi")
# CV_CONTINUE=bench/cv-results/NAME.npz (the first folds, saved in an earlier session with
# `python -m bench.crossval PREFIX --partial --save-dir ...`): train only the folds after them, then
# join the two into that file
FIRST=1
CONTINUE=()
if [ -n "${CV_CONTINUE:-}" ]; then
  FIRST=$(( $($BIN/python -c 'import sys, pathlib; from bench.crossval import load_recipe; print(load_recipe(pathlib.Path(sys.argv[1]))[1]["folds"])' "$CV_CONTINUE") + 1 ))
  CONTINUE=(--continue "$CV_CONTINUE")
fi
for fold in $(seq "$FIRST" "$FOLDS"); do
  out=$PREFIX-fold$fold
  if [ ! -f "$out/model.json" ]; then
    echo "=== fold $fold of $FOLDS ($(date))"
    $BIN/sigverify train "${args[@]}" --out "$out/model.keras" --work-dir "$out/work" \
      --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --folds "$FOLDS" --fold "$fold" --quiet --resume \
      ${EXTRA[@]+"${EXTRA[@]}"}
  fi
done
# the scored trials are also kept in the repository (CV_SAVE_DIR, default bench/cv-results/NAME.npz),
# since runs/ does not outlive the checkout; such a file stands in for a prefix in bench.crossval
$BIN/python -m bench.crossval "$PREFIX" --save-dir "${CV_SAVE_DIR:-bench/cv-results}" ${CONTINUE[@]+"${CONTINUE[@]}"}
