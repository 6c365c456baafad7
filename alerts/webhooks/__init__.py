"""Outbound alert webhooks: outbox, signing, leased delivery with retries, subscriptions."""
