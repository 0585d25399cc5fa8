"""tvapp: a self-hosted watch-together video-chat platform with a big-screen receiver.

See ../shared/DESIGN.md for the parts and layers; README.md for a tour.
"""

__version__ = "0.1.0"
