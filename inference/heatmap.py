"""Attention heatmap: where the model looked, drawn over the slide thumbnail.

Colours show each tissue tile's attention **rank** (percentile among the analysed tiles, ties
averaged), not its raw weight: raw attention is heavy-tailed, so dividing by the maximum would
paint almost every tile the lowest colour. Equal attention everywhere (a mean-pooling head)
therefore shows as one uniform middle colour. Attention is evidence weight, not tumour probability.
"""

from __future__ import annotations

import cv2
import numpy as np

from liposcope.inference.result import SlidePrediction

COLORMAP = cv2.COLORMAP_TURBO
#: Opacity of the colour over tissue tiles.
ALPHA = 0.45
#: Width range of the rendered figure and the tallest map drawn, in pixels.
MIN_WIDTH, MAX_WIDTH, MAX_MAP_HEIGHT = 1000, 1600, 1600
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, GREY = (255, 255, 255), (20, 20, 20), (90, 90, 90)


def attention_rank(attention: np.ndarray) -> np.ndarray:
    """Percentile rank of each value in [0, 1]; tied values share their average rank.

    Example:
        >>> attention_rank(np.array([0.1, 0.7, 0.1, 0.1])).round(2).tolist()
        [0.33, 1.0, 0.33, 0.33]
    """
    values = np.asarray(attention, np.float64)
    if len(values) < 2:
        return np.full(len(values), 0.5)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks: np.ndarray = (starts + (counts - 1) / 2.0)[inverse] / (len(values) - 1)
    return ranks


def overlay_attention(pred: SlidePrediction) -> np.ndarray:
    """The thumbnail with each tissue tile tinted by its attention rank (same size as the thumbnail).

    Overlapping tiles average their ranks. Pixels outside analysed tiles keep the thumbnail's colours.

    Example:
        >>> overlay = overlay_attention(pred)  # doctest: +SKIP
        >>> overlay.shape == pred.thumbnail.shape  # doctest: +SKIP
        True
    """
    thumb = np.ascontiguousarray(pred.thumbnail[..., :3], np.uint8)
    h, w = thumb.shape[:2]
    total, count = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    side = pred.tile_size_level0 / pred.thumbnail_downsample
    corners = np.asarray(pred.coords_level0, np.float64) / pred.thumbnail_downsample
    lo = np.clip(np.rint(corners), 0, [w, h]).astype(int)
    hi = np.clip(np.rint(corners + side), 0, [w, h]).astype(int)
    hi = np.maximum(hi, np.minimum(lo + 1, [w, h]))  # a tile smaller than a thumbnail pixel still shows
    for (x0, y0), (x1, y1), rank in zip(lo, hi, attention_rank(pred.attention), strict=True):
        total[y0:y1, x0:x1] += rank
        count[y0:y1, x0:x1] += 1
    tissue = count > 0
    level = np.zeros((h, w), np.uint8)
    level[tissue] = np.rint(255 * total[tissue] / count[tissue]).astype(np.uint8)
    colour = cv2.applyColorMap(level, COLORMAP)[..., ::-1]
    out = thumb.copy()
    out[tissue] = (ALPHA * colour[tissue] + (1 - ALPHA) * thumb[tissue] + 0.5).astype(np.uint8)
    return out


def render_heatmap(pred: SlidePrediction) -> np.ndarray:
    """The attention overlay as a figure: title band, map with scale bar, colour bar with its meaning.

    The figure is 1000-1600 px wide; the map keeps the slide's aspect ratio.

    Example:
        >>> write_png(out / "heatmap.png", render_heatmap(pred))  # doctest: +SKIP
    """
    overlay = overlay_attention(pred)
    h, w = overlay.shape[:2]
    width = int(np.clip(w, MIN_WIDTH, MAX_WIDTH))
    scale = min(width / w, MAX_MAP_HEIGHT / h)
    map_w, map_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    panel = np.full((map_h, width, 3), 255, np.uint8)
    left = (width - map_w) // 2
    panel[:, left : left + map_w] = cv2.resize(overlay, (map_w, map_h), interpolation=interpolation)
    um_per_px = pred.slide_mpp * pred.thumbnail_downsample / scale
    _draw_scale_bar(panel, left, map_w, um_per_px)
    return np.vstack([_title_band(pred, width), panel, _colour_bar(width, uniform=np.ptp(pred.attention) == 0)])


def draw_text(
    image: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    color: tuple[int, int, int] = BLACK,
    bold: bool = False,
) -> int:
    """Draw ASCII text with its baseline-left at ``org``; return the text width in pixels.

    Example:
        >>> draw_text(np.zeros((40, 200, 3), np.uint8), "DDLPS", (5, 30), 1.0, WHITE) > 0
        True
    """
    thickness = max(1, round(scale * (2.4 if bold else 1.6)))
    text = text.encode("ascii", "backslashreplace").decode("ascii")  # OpenCV crashes on undecodable file names
    cv2.putText(image, text, org, FONT, scale, color, thickness, cv2.LINE_AA)
    return int(cv2.getTextSize(text, FONT, scale, thickness)[0][0])


def _title_band(pred: SlidePrediction, width: int) -> np.ndarray:
    unit = width / 1200
    band = np.full((round(96 * unit), width, 3), 255, np.uint8)
    x = round(20 * unit)
    top = f"{pred.predicted_class} {pred.confidence:.2f}"
    headline, note = (
        ("no call", f"top {top}, not a call: model abstains ({pred.abstain_reasons[0].split(':')[0]})")
        if pred.abstained
        else (top, "predicted subtype (probability)")
    )
    used = draw_text(band, headline, (x, round(46 * unit)), 1.4 * unit, bold=True)
    draw_text(band, _shorten(note, 80), (x + used + round(16 * unit), round(46 * unit)), 0.6 * unit, GREY)
    facts = (
        f"slide {_shorten(pred.slide_id, 48)}  |  {len(pred.attention)} tiles at {pred.target_mpp:g} um/px  |  "
        f"tissue {pred.tissue_area_mm2:.1f} mm2  |  research use only"
    )
    draw_text(band, facts, (x, round(82 * unit)), 0.6 * unit, GREY)
    return band


def _colour_bar(width: int, *, uniform: bool) -> np.ndarray:
    unit = width / 1200
    band = np.full((round(110 * unit), width, 3), 255, np.uint8)
    x0, x1 = round(width * 0.2), round(width * 0.8)
    y0, y1 = round(18 * unit), round(42 * unit)
    ramp = np.linspace(0, 255, x1 - x0).astype(np.uint8)[None, :]
    band[y0:y1, x0:x1] = cv2.applyColorMap(ramp, COLORMAP)[..., ::-1]
    cv2.rectangle(band, (x0, y0), (x1 - 1, y1 - 1), GREY, 1)
    for pct in (0, 25, 50, 75, 100):
        tx = x0 + round((x1 - 1 - x0) * pct / 100)
        cv2.line(band, (tx, y1), (tx, y1 + round(6 * unit)), GREY, 1)
        label = f"{pct}"
        half = cv2.getTextSize(label, FONT, 0.5 * unit, 1)[0][0] // 2
        draw_text(band, label, (tx - half, y1 + round(24 * unit)), 0.5 * unit, GREY)
    draw_text(band, "low", (x0 - round(50 * unit), y1 - round(5 * unit)), 0.55 * unit)
    draw_text(band, "high", (x1 + round(10 * unit), y1 - round(5 * unit)), 0.55 * unit)
    caption = "Attention rank among tissue tiles (percentile): where the model looked, not tumour probability"
    if uniform:
        caption = "All tiles have equal attention (mean pooling): colour only marks the tiles analysed"
    half = cv2.getTextSize(caption, FONT, 0.55 * unit, 1)[0][0] // 2
    draw_text(band, caption, (width // 2 - half, y1 + round(56 * unit)), 0.55 * unit)
    return band


def _draw_scale_bar(panel: np.ndarray, left: int, map_w: int, um_per_px: float) -> None:
    """A black scale bar (1, 2 or 5 × 10^k µm, about a sixth of the map) in the map's lower left."""
    target_um = map_w / 6 * um_per_px
    exponent = 10 ** np.floor(np.log10(target_um))
    length_um = max(m * exponent for m in (1, 2, 5) if m * exponent <= target_um)
    length_px = round(length_um / um_per_px)
    unit = panel.shape[1] / 1200
    x0, y = left + round(16 * unit), panel.shape[0] - round(16 * unit)
    label = f"{length_um / 1000:g} mm" if length_um >= 1000 else f"{length_um:g} um"
    cv2.rectangle(panel, (x0, y - round(6 * unit)), (x0 + length_px, y), BLACK, -1)
    draw_text(panel, label, (x0, y - round(12 * unit)), 0.55 * unit)


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
