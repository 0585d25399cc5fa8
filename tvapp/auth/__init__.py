"""API keys (the key store in the data dir) and JWT encoding/decoding with PyJWT."""
