"""The offline plan engine: the real program under the Pulumi SDK's mock monitor, recorded as a preview."""
