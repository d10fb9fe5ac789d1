"""auth_posture: auth enforced where the spec says so, JWKS/OIDC key hygiene, rate limits."""
