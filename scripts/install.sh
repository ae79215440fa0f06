#!/usr/bin/env bash
# Installs slabfront as a systemd service: the release binary, a configuration under
# /etc/slabfront (kept if present), the unit, a logrotate rule, the `slabfront` user, and the
# cache and log directories. Run as root from the repository: scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "install.sh: run as root" >&2; exit 1; }
cargo build --release -p slabfront
install -m 0755 target/release/slabfront /usr/local/bin/slabfront
if ! id slabfront >/dev/null 2>&1; then
  useradd --system --home-dir /var/cache/slabfront --shell /usr/sbin/nologin slabfront
fi
install -d -m 0755 /etc/slabfront
[[ -f /etc/slabfront/slabfront.toml ]] || install -m 0644 packaging/slabfront.toml /etc/slabfront/slabfront.toml
install -d -o slabfront -g slabfront -m 0750 /var/cache/slabfront /var/log/slabfront
mkdir -p /var/www/html
install -m 0644 packaging/slabfront.service /etc/systemd/system/slabfront.service
install -m 0644 packaging/logrotate /etc/logrotate.d/slabfront
/usr/local/bin/slabfront check --config /etc/slabfront/slabfront.toml
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now slabfront.service
  systemctl --no-pager status slabfront.service | head -5
else
  echo "systemd is not running here; start it with: systemctl enable --now slabfront"
fi
