"""Install what the test suite needs beyond Python packages (headless Chromium), if missing.

Runs before `make test`: on a Debian/Ubuntu machine as root it installs Debian's `chromium`
package; elsewhere it only reports what is missing (the browser tests then say why they fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES = {"chromium": "/usr/bin/chromium"}


def main() -> int:
    missing = [pkg for pkg, path in PACKAGES.items() if not os.path.exists(path)]
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
