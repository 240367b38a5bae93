"""Where replies go: the socket or platform adapter that posts a room's chat replies."""
