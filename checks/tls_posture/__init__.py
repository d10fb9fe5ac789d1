"""TLS posture: sslyze scans judged against RFC 7525, Mozilla profiles and an SSL Labs grade."""
