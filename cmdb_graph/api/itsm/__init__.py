"""The ITSM records: change requests, maintenance and blackout windows, incidents."""
