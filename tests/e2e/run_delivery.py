"""`python -m tests.e2e.run_delivery`: the webhook delivery worker alone, as its own process.

The fault tests SIGKILL and restart roles one by one; delivery runs apart from evaluation so that
killing one does not stop the other.
"""

from __future__ import annotations

import asyncio
import logging

from alerts.webhooks.delivery import run_delivery
from app.core.settings import get_settings
from app.runtime import run_roles

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_roles(get_settings(), [], extra=[run_delivery]))
