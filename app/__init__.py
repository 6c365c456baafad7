"""Cold-chain shipment monitoring service: shared settings, database and models."""
