"""Real servers on loopback for the integration tests (aiosmtpd, Dovecot, pymap)."""
