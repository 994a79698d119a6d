"""Pulumi ComponentResources, one per module. Type tokens are `platform:<module>:<Type>`."""
