"""`platformctl partners|regions|countries|stacks`: the fleet's listings, as a table or JSON."""

from __future__ import annotations

from cli.context import listing, open_repo
from cli.groups import Commands
from cli.options import JsonFlag


def partners(as_json: JsonFlag = False) -> None:
    """List partners.

    Example: platformctl partners --json
    """
    from platformctl import listings

    listing(listings.partners(open_repo()), as_json, "Partners")


def regions(as_json: JsonFlag = False) -> None:
    """List regions with their launched countries.

    Example: platformctl regions
    """
    from platformctl import listings

    listing(listings.regions(open_repo()), as_json, "Regions")


def countries(as_json: JsonFlag = False) -> None:
    """List the catalog's countries and compliance profiles.

    Example: platformctl countries
    """
    from platformctl import listings

    listing(listings.countries(open_repo()), as_json, "Countries")


def list_stacks(as_json: JsonFlag = False) -> None:
    """List the stacks that have a file in stacks/.

    Example: platformctl stacks
    """
    from platformctl import listings

    listing(listings.stacks(open_repo()), as_json, "Stacks")


COMMANDS: Commands = {"partners": partners, "regions": regions, "countries": countries, "stacks": list_stacks}
