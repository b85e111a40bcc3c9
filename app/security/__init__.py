"""Security primitives: secrets at rest, passwords, TOTP, tokens, rate limits."""
