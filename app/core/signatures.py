"""Electronic signatures on decisions (21 CFR Part 11): what a signature means, and its manifest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What a QP's signature on the release decision means (11.50(a)(3)).
MEANINGS = {"released": "Released for clinical use", "rejected": "Rejected"}


def signature_manifest(shipment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest (11.50(a)): printed name, email, date and time, meaning — from a shipment's
    columns; None before the decision (or for one recorded before decisions were signed)."""
    if shipment.get("signed_at") is None:
        return None
    return {"signer_name": shipment["signer_name"], "signer_email": shipment["signer_email"],
            "signed_at": shipment["signed_at"], "meaning": shipment["signature_meaning"]}
