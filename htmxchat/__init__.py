"""htmxchat: a lightweight local chat app streaming replies over htmx and one WebSocket."""

__version__ = "0.1.0"
