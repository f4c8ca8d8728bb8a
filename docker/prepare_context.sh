#!/usr/bin/env bash
# Fill docker/eval-data/ (the build context folder the Dockerfile copies to /opt/eval-data).
#
#   docker/prepare_context.sh --download      # the default for a fresh clone: fetch every file from its public
#                                             # git source at a pinned commit (needs network, curl)
#   docker/prepare_context.sh                 # copy from $OPENRLHF_STEER_DATA or ../shared/data
#   docker/prepare_context.sh --from DIR      # copy from DIR (one sub-folder per benchmark), e.g. offline:
#                                             # --from tests/data/shared/data (the committed copy)
#   ... --to DIR                              # fill DIR instead of docker/eval-data
# Afterwards every file is checked against docker/eval-data.sha256 (sha256) and every test set for its row
# count; a mismatch stops with exit status 1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/eval-data"
manifest="$here/eval-data.sha256"
mode=copy
src="${OPENRLHF_STEER_DATA:-$here/../../shared/data}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) src="$2"; shift 2 ;;
    --download) mode=download; shift ;;
    --to) dest="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Sources at pinned commits; tests/data/shared/data/README.md describes each file.
QWEN=https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/a45202bd16f1ec06f433442dc1152d0074773465/evaluation/data
PUNKT=https://raw.githubusercontent.com/SeanLeng1/AetherEval/457bd81c7943dc384fd119a509f05fcb09d7413a/benchmarks/ifeval/ifeval_lib/.nltk_data/tokenizers/punkt_tab/english
ENGLISH=ifeval/nltk_data/tokenizers/punkt_tab/english
declare -A URL=(
  [aime24/test.jsonl]="$QWEN/aime24/test.jsonl"
  [amc23/test.jsonl]="$QWEN/amc23/test.jsonl"
  [minerva_math/test.jsonl]="$QWEN/minerva_math/test.jsonl"
  [olympiadbench/test.jsonl]="$QWEN/olympiadbench/test.jsonl"
  [math500/test.jsonl]="https://raw.githubusercontent.com/hkust-nlp/simpleRL-reason/cf1c7858bfc145a27aa733e75d930d34f0d318a6/examples/simplelr_math_eval/data/math500/test.jsonl"
  [aime25/test.jsonl]="https://raw.githubusercontent.com/armenjeddi/mcd/76771f969048ebd77a1b4261b0a3469192c6f92a/evaluation/data/aime25/test.jsonl"
  [ifeval/input_data.jsonl]="https://raw.githubusercontent.com/google-research/google-research/19638399cc9e03623c5b9087a1d6fa8813974ce9/instruction_following_eval/data/input_data.jsonl"
  [$ENGLISH/abbrev_types.txt]="$PUNKT/abbrev_types.txt"
  [$ENGLISH/collocations.tab]="$PUNKT/collocations.tab"
  [$ENGLISH/ortho_context.tab]="$PUNKT/ortho_context.tab"
  [$ENGLISH/sent_starters.txt]="$PUNKT/sent_starters.txt"
)
declare -A ROWS=([aime24]=30 [aime25]=30 [amc23]=40 [math500]=500 [minerva_math]=272 [olympiadbench]=675 [ifeval]=541)

mkdir -p "$dest"
if [[ $mode == copy ]]; then
  [[ -d "$src" ]] || {
    echo "eval data folder $src not found; use --download (network) or --from tests/data/shared/data (offline)" >&2
    exit 1
  }
  # LiveCodeBench is not copied: a shared folder may hold only a non-canonical sample, and the eval CLI
  # fetches livecodebench/code_generation_lite from the hub at evaluation time.
  for name in aime24 aime25 amc23 math500 minerva_math olympiadbench ifeval; do
    if [[ -d "$src/$name" ]]; then
      rm -rf "${dest:?}/$name"; cp -r "$src/$name" "$dest/$name"
    fi
  done
else
  for rel in "${!URL[@]}"; do
    mkdir -p "$(dirname "$dest/$rel")"
    if ! curl -fsSL --retry 3 "${URL[$rel]}" -o "$dest/$rel.tmp"; then
      rm -f "$dest/$rel.tmp"; echo "download failed: ${URL[$rel]} (network needed; offline use --from DIR)" >&2; exit 1
    fi
    mv "$dest/$rel.tmp" "$dest/$rel"
  done
fi

status=0
for name in "${!ROWS[@]}"; do
  file="$dest/$name/test.jsonl"
  [[ $name == ifeval ]] && file="$dest/ifeval/input_data.jsonl"
  got=$( [[ -f "$file" ]] && grep -c . "$file" || echo 0 )
  if [[ "$got" != "${ROWS[$name]}" ]]; then
    echo "check failed: $file has $got rows, expected ${ROWS[$name]}" >&2; status=1
  fi
done
if ! (cd "$dest" && grep -v '^#' "$manifest" | sha256sum --quiet -c - >&2); then
  echo "check failed: $dest differs from $manifest (sha256 above)" >&2; status=1
fi
[[ $status == 0 ]] && echo "$dest is ready ($(du -sh "$dest" | cut -f1)), rows and sha256 checked"
exit $status
