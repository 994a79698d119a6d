"""Webhooks: signed, retried, replayable deliveries of platform events (Standard Webhooks)."""
