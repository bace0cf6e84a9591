"""Open311 GeoReport v2 interface to petitions (https://wiki.open311.org/GeoReport_v2)."""
