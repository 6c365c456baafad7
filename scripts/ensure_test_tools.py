"""Install what the test suite needs beyond Python packages, if missing: headless Chromium (the
page's tests), mosquitto (MQTT 5 and shared subscriptions, which the amqtt fallback lacks) with
its clients (bulk publishing, password files), and psql (the test servers' set-up).

Runs before `make test`: on a Debian/Ubuntu machine as root it installs the Debian packages;
elsewhere it only reports what is missing (the tests that need it then say why they fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# Debian package → a program it installs.
PACKAGES = {"chromium": "chromium", "mosquitto": "mosquitto", "mosquitto-clients": "mosquitto_pub",
            "postgresql-client": "psql"}


def _installed(program: str) -> bool:
    return shutil.which(program) is not None or any(
        os.path.exists(f"{d}/{program}") for d in ("/usr/bin", "/usr/sbin"))


def main() -> int:
    missing = [pkg for pkg, program in PACKAGES.items() if not _installed(program)]
    if not missing:
        return 0
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"ensure_test_tools: missing {missing}; install them (Debian: apt-get install "
              f"{' '.join(missing)})", file=sys.stderr)
        return 0
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
