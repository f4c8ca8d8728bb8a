#!/usr/bin/env bash
# Fill docker/eval-data/ (the build context folder the Dockerfile copies to /opt/eval-data).
#
#   docker/prepare_context.sh                 # copy from $OPENRLHF_STEER_DATA or ../shared/data
#   docker/prepare_context.sh --from DIR      # copy from DIR (one sub-folder per benchmark)
#   docker/prepare_context.sh --download      # fetch from the public git sources at pinned commits
#                                             # and NLTK punkt_tab with nltk.downloader (needs network)
# Every math set is checked for its row count afterwards.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/eval-data"
mode=copy
src="${OPENRLHF_STEER_DATA:-$here/../../shared/data}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) src="$2"; shift 2 ;;
    --download) mode=download; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

QWEN=https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/evaluation/data
declare -A URL=(
  [aime24]="$QWEN/aime24/test.jsonl"
  [amc23]="$QWEN/amc23/test.jsonl"
  [minerva_math]="$QWEN/minerva_math/test.jsonl"
  [olympiadbench]="$QWEN/olympiadbench/test.jsonl"
  [math500]="https://raw.githubusercontent.com/hkust-nlp/simpleRL-reason/cf1c7858bfc145a27aa733e75d930d34f0d318a6/examples/simplelr_math_eval/data/math500/test.jsonl"
  [aime25]="https://raw.githubusercontent.com/armenjeddi/mcd/76771f969048ebd77a1b4261b0a3469192c6f92a/evaluation/data/aime25/test.jsonl"
)
declare -A ROWS=([aime24]=30 [aime25]=30 [amc23]=40 [math500]=500 [minerva_math]=272 [olympiadbench]=675)

mkdir -p "$dest"
if [[ $mode == copy ]]; then
  [[ -d "$src" ]] || { echo "eval data folder $src not found; pass --from DIR or --download" >&2; exit 1; }
  # LiveCodeBench is not copied: a shared folder may hold only a non-canonical sample, and the eval CLI
  # fetches livecodebench/code_generation_lite from the hub at evaluation time.
  for name in aime24 aime25 amc23 math500 minerva_math olympiadbench ifeval; do
    if [[ -d "$src/$name" ]]; then
      rm -rf "${dest:?}/$name"; cp -r "$src/$name" "$dest/$name"
    fi
  done
else
  for name in "${!URL[@]}"; do
    mkdir -p "$dest/$name"
    curl -fsSL "${URL[$name]}" -o "$dest/$name/test.jsonl.tmp" && mv "$dest/$name/test.jsonl.tmp" "$dest/$name/test.jsonl"
  done
  mkdir -p "$dest/ifeval"
  curl -fsSL "https://raw.githubusercontent.com/google-research/google-research/19638399cc9e03623c5b9087a1d6fa8813974ce9/instruction_following_eval/data/input_data.jsonl" \
    -o "$dest/ifeval/input_data.jsonl"
  "${PYTHON:-python3}" -m nltk.downloader -d "$dest/ifeval/nltk_data" punkt_tab
fi

status=0
for name in "${!ROWS[@]}"; do
  file="$dest/$name/test.jsonl"
  got=$( [[ -f "$file" ]] && grep -c . "$file" || echo 0 )
  if [[ "$got" != "${ROWS[$name]}" ]]; then
    echo "check failed: $file has $got rows, expected ${ROWS[$name]}" >&2; status=1
  fi
done
[[ -d "$dest/ifeval/nltk_data/tokenizers/punkt_tab/english" ]] || { echo "check failed: punkt_tab missing under $dest/ifeval/nltk_data" >&2; status=1; }
[[ $status == 0 ]] && echo "docker/eval-data is ready ($(du -sh "$dest" | cut -f1))"
exit $status
