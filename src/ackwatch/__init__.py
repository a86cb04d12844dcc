"""ackwatch: every client email gets a human acknowledgement within the window."""

__version__ = "0.1.0"
