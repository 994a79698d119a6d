"""pulumi-policy entry point: `pulumi preview --policy-pack policies` runs this."""

import sys
from pathlib import Path

# The Python language host starts a policy pack as `python -u -m pulumi.policy <engine> <pack folder>` in the pack's
# folder (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go, RunPlugin: "Policy packs (i.e.
# kind=analyzer)"), and pulumi.policy's __main__ runs `runpy.run_path(<pack folder>)`
# (sdk/python/lib/pulumi/policy/__main__.py), which puts the pack's folder, policies/, on sys.path: not the project
# folder that holds the `policies` package and the catalogs it reads. They are not installed (only the tool is), so
# the project folder goes first here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import pack_policies

PolicyPack(name="platform-compliance", enforcement_level=EnforcementLevel.MANDATORY, policies=pack_policies())
