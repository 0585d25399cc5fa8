"""Sans-I/O wire protocols: message types, codecs and per-connection state machines.

Adapters feed received text in and send the text these objects produce; nothing here touches a socket.
"""
