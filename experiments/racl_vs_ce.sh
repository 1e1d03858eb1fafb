#!/usr/bin/env bash
# tiny+RACL vs tiny+CE on the Czech dev corpus, 3 seeds (the "RACL vs CE" numbers of docs/training.md).
# train = corpus train split (bona fide + TTS spoofs) + Griffin-Lim reconstructions of the train
# bona fide clips; dev EER per run is printed by `detector inspect`. Extra train flags via "$@",
# e.g. `bash experiments/racl_vs_ce.sh --epochs 5 --lr 1e-3 --lr-halve-every 3` (the second setting).
set -euo pipefail
CORPUS=${CORPUS:-../shared/data/dev-corpus}
OUT=${OUT:-runs/racl-vs-ce}
mkdir -p "$OUT"
manifests import --corpus "$CORPUS" --out "$OUT/corpus.parquet"
python - "$CORPUS" "$OUT/train-bona.csv" <<'PY'
import csv, os, sys
corpus, dest = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(os.path.join(corpus, "protocol.csv")))
        if r["split"] == "train" and r["label"] == "bonafide"]
with open(dest, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["utt_id", "path", "label", "attack", "speaker", "language", "split"])
    for r in rows:  # the corpus's own utt_ids, so reconstructions pair with their originals
        w.writerow([r["path"].rsplit(".", 1)[0], os.path.abspath(os.path.join(corpus, r["path"])), "bonafide", "-",
                    r["speaker"], r["language"], "train"])
PY
reconstruct run --method vocoder --model griffinlim --corpus "$OUT/train-bona.csv" --allow-outside-root \
  --out "$OUT/gl-train" --executor local
for seed in 688 689 690; do for loss in racl ce; do
  detector train --manifest "$OUT/corpus.parquet" --manifest "$OUT/gl-train/manifest" --out "$OUT/$loss-s$seed" \
    --frontend tiny --backend linear --aggregation attn --crop 16000 --batch-size 16 --epochs 3 --patience 3 \
    --average-last 2 --lr-halve-every 2 --seed "$seed" --loss "$loss" --no-progress "$@"
  detector inspect --checkpoint "$OUT/$loss-s$seed" | grep -i "dev eer"
done; done
