"""Partner specs (one YAML file each in this folder), the PartnerSpec model and the tier table."""
