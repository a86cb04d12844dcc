"""Integration tests against real servers on loopback (Dovecot, pymap, aiosmtpd)."""
