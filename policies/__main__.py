"""pulumi-policy entry point: `pulumi preview --policy-pack policies` runs this."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import pack_policies

PolicyPack(name="platform-compliance", enforcement_level=EnforcementLevel.MANDATORY, policies=pack_policies())
