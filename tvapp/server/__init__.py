"""The core server: HTTP/REST, the signaling websocket, the room manager and the SQLite store."""
