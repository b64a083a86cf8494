#!/usr/bin/env bash
# Installs everything sdnmip needs on Debian 12, as root: the Debian packages and a virtual
# environment (.venv in this checkout) with sdnmip installed in editable mode.
# Idempotent: a second run changes nothing and takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.sdnmip-install-stamp"
PACKAGES=(
    openvswitch-switch iproute2 ethtool tcpdump tshark iperf3 nftables iputils-ping procps
    python3-venv radvd curl
)

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the testbed needs network namespaces): sudo $0"
command -v apt-get >/dev/null || die "apt-get not found: sdnmip installs on Debian 12"

# --- Debian packages -------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    # tshark asks whether non-root users may capture; answer no, without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    # The testbed runs its own private OVS; keep the package from starting the system one.
    policy_rc=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy_rc"
        chmod 755 "$policy_rc"
        created_policy=1
        trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy_rc"; fi' EXIT
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$created_policy" = 1 ]; then rm -f "$policy_rc"; created_policy=0; fi
    if printf '%s\n' "${missing[@]}" | grep -qx openvswitch-switch; then
        # Not needed, and a system ovs-vswitchd would only confuse: keep it off at boot too.
        if [ -d /run/systemd/system ]; then
            systemctl disable --now openvswitch-switch.service >/dev/null 2>&1 || true
        elif command -v update-rc.d >/dev/null; then
            update-rc.d openvswitch-switch disable >/dev/null 2>&1 || true
        fi
        if [ -f /run/openvswitch/ovs-vswitchd.pid ] \
            && kill -0 "$(cat /run/openvswitch/ovs-vswitchd.pid)" 2>/dev/null; then
            /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
        fi
    fi
else
    say "Debian packages present"
fi

# --- Python virtual environment ----------------------------------------------------------------
want="$(sha256sum < "$ROOT/pyproject.toml" | cut -d' ' -f1) $(/usr/bin/python3 --version)"
if [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/sdnmip" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    say "virtual environment $VENV up to date"
else
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; /usr/bin/python3 -m venv "$VENV"; }
    say "installing sdnmip and its Python dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test,demo]"
    echo "$want" > "$STAMP"
fi
say "done"
