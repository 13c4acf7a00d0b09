#!/usr/bin/env bash
# The Python package (python/): `pip install ./python` into target/pyenv, a release build by
# maturin in target/python with two jobs. Skipped when nothing it is built from changed since
# the last install.
#   scripts/python.sh install   build and install if needed
#   scripts/python.sh lint      cargo fmt --check and clippy -D warnings of the python crate
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target/python" CARGO_BUILD_JOBS=2
case "${1:-}" in
    install)
        stamp=target/python/.installed
        if [ ! -f "$stamp" ] || ! target/pyenv/bin/python -c "import pgcache" 2>/dev/null ||
            [ -n "$(find python/src python/pgcache python/Cargo.toml python/Cargo.lock python/pyproject.toml \
                host/src host/Cargo.toml -newer "$stamp" -print -quit)" ]; then
            target/pyenv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
            mkdir -p target/python && touch "$stamp"
        fi ;;
    lint)
        cargo fmt --manifest-path python/Cargo.toml -- --check
        cargo clippy --manifest-path python/Cargo.toml --all-targets --locked -- -D warnings ;;
    *) echo "usage: $0 install|lint" >&2; exit 2 ;;
esac
