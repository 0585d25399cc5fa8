"""The big-screen receiver (pygame renderer, audio out, pairing): built by the TV receiver issue."""
