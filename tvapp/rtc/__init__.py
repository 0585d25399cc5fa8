"""The aiortc/aioice glue shared by the core server (SFU), the SDK and the TV.

`internals` (a package) is the one place in tvapp that touches aiortc's private attributes (the receiver tap that
takes encoded frames instead of decoding them, the sender's keyframe-request hook, the host addresses
ICE offers, and the guards that drop malformed input instead of letting it stop a transport); tests in
tests/test_rtc_internals.py and tests/test_rtc_guards.py fail loudly when an aiortc release moves them.
`tracks` and `packets` carry pre-encoded media into aiortc's public sender API; `peer` builds
peer connections configured the way every part of tvapp needs them (max-bundle, no public STUN).

Layering: server, client and tv may import this package; it imports aiortc, aioice, av and tvapp.core only.
"""
