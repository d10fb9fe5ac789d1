"""Certificate expiry: every address behind a name, the whole served chain, and PEM files."""
