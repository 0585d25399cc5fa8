"""The TV's own endpoints for paired phones: pairing over HTTP, the /v1/remote websocket, the device store, TLS."""
