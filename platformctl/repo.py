"""The platform repository platformctl works on: where it is and what it holds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from partners.spec import NOT_PARTNER_SPECS
from platformctl.errors import InputError
from platformctl.stacks import StackName, parse_stack_name

ROOT_ENV = "PLATFORMCTL_ROOT"
STATE_DIR = ".platformctl"


def find_root(explicit: Path | None = None, start: Path | None = None) -> Path:
    """`--root`, else $PLATFORMCTL_ROOT, else the nearest directory upwards that holds Pulumi.yaml."""
    chosen = explicit or (Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None)
    if chosen is not None:
        if not (chosen / "Pulumi.yaml").is_file():
            raise InputError.single(str(chosen), "--root", "not a platform repository (no Pulumi.yaml)")
        return chosen.resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise InputError.single(str(here), "--root", "no Pulumi.yaml here or above; pass --root or set PLATFORMCTL_ROOT")


@dataclass(frozen=True)
class Repo:
    root: Path
    """The repository's top directory (holds Pulumi.yaml)."""

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    @property
    def partners_dir(self) -> Path:
        return self.root / "partners"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def stack_names(self) -> list[StackName]:
        """Every stack that has a file in stacks/, in planning order."""
        names = [
            parse_stack_name(path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
            for path in self.stacks_dir.glob("Pulumi.*.yaml")
        ]
        return sorted(names, key=lambda s: (s.rank, s.key))

    def partner_spec_files(self) -> list[Path]:
        """partners/<id>.yaml files (not the tier table or price book, not examples)."""
        return sorted(p for p in self.partners_dir.glob("*.yaml") if p.name not in NOT_PARTNER_SPECS)

    def partner_file(self, partner_id: str) -> Path:
        return self.partners_dir / f"{partner_id}.yaml"

    def display(self, path: Path) -> str:
        """A path as shown in messages: relative to the repository when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
