"""The Python SDK: join rooms over the signaling websocket (media arrives with the SFU)."""
