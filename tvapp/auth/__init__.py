"""API keys and tokens: the key store in the data dir (keys), JWT signing, verification and acceptance (tokens).

Acceptance rules that need the server's memory (revoked token ids and families, the join grant) are
`tokens.TokenAuthority.accept`; the rules about claims and lifetimes are pure, in tvapp.core.claims.
"""
