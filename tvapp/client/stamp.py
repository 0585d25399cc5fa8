"""Stamp a frame counter and a capture time into a video frame's pixels, and read them back.

Glass-to-glass latency and frame loss are measured by sending frames whose pixels say which frame
they are and when they were made. The stamp must survive lossy video codecs (VP8, H.264) at modest
bitrates, so it is a band at the top of the frame made of large flat grey cells aligned to the
codec's 8x8/16x16 block grid. Each cell carries two bits as one of four grey levels; the first two
cells are black and white references, so a reader calibrates against range conversions
(full-range RGB vs limited-range YUV) and codec drift. The payload is the 32-bit counter, the 48-bit
capture time in ms and a CRC-16 over both (96 bits, 48 cells).

The layout depends only on the frame width, so a reader needs nothing but the pixels. Pure numpy.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

COUNTER_BITS = 32
CAPTURE_MS_BITS = 48
MIN_WIDTH = 160

_REFERENCE_CELLS = 2
_DATA_CELLS = 48
_CELLS = _REFERENCE_CELLS + _DATA_CELLS
_TARGET_COLUMNS = 40
_RGB_LEVELS = (0, 85, 170, 255)
_LUMA_LEVELS = (16, 89, 162, 235)
_MIN_CONTRAST = 48.0
_MAX_SYMBOL_ERROR = 0.45
_BT601 = np.array([0.299, 0.587, 0.114])

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class StampLayout:
    """Where the stamp's cells sit in a frame of a given width."""

    cell: int
    columns: int
    rows: int

    @property
    def height(self) -> int:
        """Return the height in pixels of the band the stamp covers."""
        return self.rows * self.cell

    def origin(self, index: int) -> tuple[int, int]:
        """Return the (y, x) of the top-left pixel of cell `index`."""
        row, column = divmod(index, self.columns)
        return row * self.cell, column * self.cell


def layout_for_width(width: int) -> StampLayout:
    """Return the stamp layout for frames `width` pixels wide (ValueError below MIN_WIDTH)."""
    if width < MIN_WIDTH:
        raise ValueError(f"a stamped frame must be at least {MIN_WIDTH} px wide, not {width}")
    cell = max(16, (width // _TARGET_COLUMNS) // 8 * 8)
    columns = width // cell
    rows = -(-_CELLS // columns)
    return StampLayout(cell=cell, columns=columns, rows=rows)


def stamp_height(width: int) -> int:
    """Return how many rows at the top of a frame `width` pixels wide the stamp covers."""
    return layout_for_width(width).height


def stamp(image: Image, counter: int, capture_ms: int) -> Image:
    """Write `counter` and `capture_ms` into the top band of `image` in place and return it.

    `image` is RGB (height, width, 3) or a luma plane / planar YUV420 array (rows, width) whose
    first rows are the Y plane; both uint8.
    """
    if not 0 <= counter < 1 << COUNTER_BITS:
        raise ValueError(f"counter {counter} does not fit in {COUNTER_BITS} bits")
    if not 0 <= capture_ms < 1 << CAPTURE_MS_BITS:
        raise ValueError(f"capture_ms {capture_ms} does not fit in {CAPTURE_MS_BITS} bits")
    _check_image(image)
    layout = layout_for_width(image.shape[1])
    if image.shape[0] < layout.height:
        raise ValueError(f"a {image.shape[1]} px wide frame needs at least {layout.height} rows for the stamp")
    levels = _RGB_LEVELS if image.ndim == 3 else _LUMA_LEVELS
    symbols = [0, 3] + _payload_symbols(counter, capture_ms)
    for index, symbol in enumerate(symbols):
        y, x = layout.origin(index)
        image[y:y + layout.cell, x:x + layout.cell] = levels[symbol]
    return image


# How much a publisher may have scaled its stamped picture down before encoding (tvapp.core.adaptive's steps,
# publish_constraints): a stamp written at the source width is read at the decoded one.
_SCALES = (1.5, 2.0, 3.0, 4.0)
_MIN_SCALED_CELL = 5.0  # px: smaller cells are blurred away by the codec


def read_stamp(image: Image) -> tuple[int, int] | None:
    """Return (counter, capture_ms) stamped in `image`, or None if it carries no valid stamp.

    `image` is RGB (height, width, 3) or a luma plane / planar YUV420 array (rows, width). A stamp written before
    the picture was scaled down (adaptive stream) is found too: the source widths a scale step could have come from
    are tried, and the CRC tells the right one.
    """
    _check_image(image)
    width = image.shape[1]
    found = _read_at(image, layout_for_width(width), 1.0)
    for scale in _SCALES if found is None else ():
        guess = round(width * scale)
        for source in range(guess - 2, guess + 3):
            if source < MIN_WIDTH:
                continue
            layout = layout_for_width(source)
            if layout.cell / scale < _MIN_SCALED_CELL:
                continue
            found = _read_at(image, layout, source / width)
            if found is not None:
                return found
    return found


def _read_at(image: Image, layout: StampLayout, scale: float) -> tuple[int, int] | None:
    """Read a stamp laid out for a frame `scale` times as wide as `image` (1.0: its own width)."""
    height = int(layout.height / scale)
    if image.shape[0] < height or layout.columns * layout.cell / scale > image.shape[1] + 1:
        return None
    luma = _luma(image[:height])
    means = [_cell_mean(luma, layout, index, scale) for index in range(_CELLS)]
    if any(m != m for m in means):  # NaN: a cell fell outside the picture
        return None
    black, white = means[0], means[1]
    if white - black < _MIN_CONTRAST:
        return None
    symbols = []
    for value in means[_REFERENCE_CELLS:]:
        scaled = (value - black) / (white - black) * 3.0
        symbol = int(round(scaled))
        if abs(scaled - symbol) > _MAX_SYMBOL_ERROR or not 0 <= symbol <= 3:
            return None
        symbols.append(symbol)
    return _decode_symbols(symbols)


def _check_image(image: Image) -> None:
    if image.dtype != np.uint8:
        raise ValueError(f"a stamped frame must be uint8, not {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an RGB (h, w, 3) or a planar (rows, w) array, not shape {image.shape}")


def _luma(image: Image) -> npt.NDArray[np.float64]:
    if image.ndim == 2:
        return image.astype(np.float64)
    return np.asarray(image @ _BT601, dtype=np.float64)


def _cell_mean(luma: npt.NDArray[np.float64], layout: StampLayout, index: int, scale: float = 1.0) -> float:
    # Only the middle of a cell: deblocking and chroma bleed touch its edges.
    y, x = layout.origin(index)
    cell = layout.cell / scale
    top, left = y / scale, x / scale
    inner = luma[int(top + cell / 4):int(top + cell - cell / 4) or None,
                 int(left + cell / 4):int(left + cell - cell / 4) or None]
    return float(inner.mean()) if inner.size else float("nan")


def _payload_symbols(counter: int, capture_ms: int) -> list[int]:
    body = counter.to_bytes(4, "big") + capture_ms.to_bytes(6, "big")
    data = body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")
    value = int.from_bytes(data, "big")
    return [(value >> shift) & 3 for shift in range(2 * _DATA_CELLS - 2, -2, -2)]


def _decode_symbols(symbols: list[int]) -> tuple[int, int] | None:
    value = 0
    for symbol in symbols:
        value = value << 2 | symbol
    data = value.to_bytes(12, "big")
    body, check = data[:10], int.from_bytes(data[10:], "big")
    if binascii.crc_hqx(body, 0xFFFF) != check:
        return None
    return int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big")
