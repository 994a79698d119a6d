"""Which folder is the platform project: the one definition of the project file, the root variable and the search.

The console script (`cli/launch.py`) asks before it imports anything of the program, so it lives in the bottom
package: the program's own packages (`fleet`, `components`, ...) are not installed, they are loaded from the root
found here.
"""

from __future__ import annotations

import os
from pathlib import Path

from foundation.errors import InputError

PROJECT_FILE = "Pulumi.yaml"
"""The file that makes a folder a Pulumi project (and this tool's repository root)."""
ROOT_ENV = "PLATFORMCTL_ROOT"
"""The environment variable that names the project when `--root` does not."""


def find_root(explicit: Path | None = None, start: Path | None = None) -> Path:
    """`--root`, else $PLATFORMCTL_ROOT, else the nearest directory upwards that holds Pulumi.yaml."""
    chosen = explicit or (Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None)
    if chosen is not None:
        if not (chosen / PROJECT_FILE).is_file():
            raise InputError.single(str(chosen), "--root", f"not a platform repository (no {PROJECT_FILE})")
        return chosen.resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise InputError.single(str(here), "--root", f"no {PROJECT_FILE} here or above; pass --root or set {ROOT_ENV}")
