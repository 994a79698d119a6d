"""Marketplace integrations: the spec model, the review rules table, the automated review and review records."""
