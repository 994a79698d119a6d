"""Thin runtime services deployed by the region stacks (one image, `services/Dockerfile`)."""
