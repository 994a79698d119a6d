"""The region and country catalog: YAML data in this folder, read into frozen pydantic models."""

from regions.catalog import (
    Catalog,
    ComplianceProfile,
    Country,
    Region,
    Residency,
    ResidencyVerdict,
    load_catalog,
)

__all__ = [
    "Catalog",
    "ComplianceProfile",
    "Country",
    "Region",
    "Residency",
    "ResidencyVerdict",
    "load_catalog",
]
