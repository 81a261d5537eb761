#!/usr/bin/env bash
# Set up everything podsec needs on a Debian machine (idempotent, quick when done), then run
# the given command inside the project's virtualenv:  bash scripts/dev.sh podsec check examples/
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
# openssh-server, openssh-client, postgresql-client: the real sshd, ssh and psql tests/test_fsuser_real_tools.py runs
# zstd: the zstd program tests/test_image_store.py compresses real layers with
# s6: the real s6-setuidgid (with s6-envuidgid, s6-applyuidgid) tests/test_puid_runtime.py drops privileges with
# debootstrap: builds the real-app images (nginx-light, redis-server, postgresql) tests/debimage.py caches
apt_pkgs=(runc crun busybox-static skopeo docker-registry acl attr python3-venv util-linux iproute2
  openssh-server openssh-client postgresql-client s6 debootstrap zstd)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "podsec setup: installing ${missing[*]}" >&2
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    # The tests only need the sshd binary: Debian's switch keeps the ssh service from starting, now or at boot.
    mkdir -p /etc/ssh && touch /etc/ssh/sshd_not_to_be_run
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
venv="$here/.venv"
stamp="$venv/.podsec-installed"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -e ".[test]" >&2
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
[ "$#" -gt 0 ] || exit 0
exec "$@"
