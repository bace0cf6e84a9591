"""The OpenRosa server: ODK Collect and Enketo list the open rounds' forms, download them
and submit responses (docs/odk.md)."""
