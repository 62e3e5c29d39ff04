#!/usr/bin/env bash
# The cascade on the real head CT of ../shared/data: net A trained on the patient's right half
# of the scan (validated on the left half), net B trained on jaw phantoms only, then
# `enamel segment` on the whole crop and `enamel eval` against the reference categories and
# FDI numbers. Both nets see the same HU window, so phantom and CT intensities agree.
#
# Usage: scripts/real-ct-cascade.sh [ENAMEL_BINARY] [DATA_DIR] [OUT_DIR]
set -euo pipefail
enamel=${1:-target/release/enamel}
data=${2:-${ENAMEL_DATA:-../shared/data}}
out=${3:-real-ct-cascade}
window=-1000,3000
mkdir -p "$out"

for seed in 1 2 3 4; do
  "$enamel" phantom --out "$out/phantom-$seed" --seed "$seed" --size 48,64,64 --spacing 0.96 >/dev/null
done
pairs="$out/phantom-pairs.txt"
: > "$pairs"
for seed in 1 2 3 4; do
  echo "phantom-$seed/image.nrrd phantom-$seed/categories.nrrd" >> "$pairs"
done

"$enamel" train --stage binary --image "$data/ct-jaw-promed0051.nrrd" \
  --labels "$data/ct-jaw-promed0051-teeth.nrrd" --half right --window="$window" \
  --patch 16,32,32 --batch 2 --epochs 15 --steps-per-epoch 20 --device cpu --seed 1 \
  --out "$out/run-binary"
"$enamel" train --stage categories --pairs "$pairs" --window="$window" \
  --patch 32,48,48 --epochs 8 --steps-per-epoch 50 --lr 3e-3 --device cpu --seed 1 \
  --out "$out/run-categories"

"$enamel" segment "$data/ct-jaw-promed0051.nrrd" --binary "$out/run-binary/best.safetensors" \
  --categories "$out/run-categories/last.safetensors" --out "$out/segmentation" --device cpu
"$enamel" eval "$out/segmentation/categories.nrrd" "$data/ct-jaw-promed0051-categories.nrrd"
"$enamel" eval "$out/segmentation/instances.nrrd" "$data/ct-jaw-promed0051-fdi.nrrd"
