"""The HTTP and websocket server: ingest, overlay, health."""
