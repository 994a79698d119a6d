"""The monthly payouts job: revenue-share statements and Stripe Connect transfers (see job.py)."""
