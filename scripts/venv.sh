# Sourced by the other scripts: use the active virtual environment, or make ./.venv.
# On a fresh Debian machine the venv module needs python3-venv; as root it is installed.
PYTHON=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
      else
        echo "python3 -m venv is missing: install python3-venv (sudo apt-get install python3-venv)" >&2
        exit 1
      fi
    fi
    "$PYTHON" -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install --quiet --upgrade pip
