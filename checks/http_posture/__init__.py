"""HTTP posture: headers, CORS, redirects, cookies, errors, methods and security.txt."""
