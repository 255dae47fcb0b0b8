"""The image statistics nanoBragg prints after rendering, and the pixel selection (roi) they use."""

from dataclasses import dataclass

import numpy as np

from .host import host_array


def roi_mask(shape, roi) -> np.ndarray:
    """(slow, fast) bool array: True inside roi = (xmin, xmax, ymin, ymax), bounds inclusive, x = fast.

    roi None selects every pixel.
    """
    inside = np.ones(shape, dtype=bool)
    if roi is None:
        return inside
    values = tuple(roi)
    if len(values) != 4:
        raise ValueError(f"roi={roi!r}: four integers (xmin, xmax, ymin, ymax) are required")
    xmin, xmax, ymin, ymax = (int(v) for v in values)
    slow = np.arange(shape[0])
    fast = np.arange(shape[1])
    return ((slow >= ymin) & (slow <= ymax))[:, None] & ((fast >= xmin) & (fast <= xmax))[None, :]


def float32_roi_values(float_image, roi, product):
    """(float32 image, roi mask, float64 values inside the roi) as nanoBragg converts its image.

    ``product`` names the file being made, for the error raised on NaN pixels.
    """
    image = host_array(float_image).astype(np.float32)
    if image.ndim != 2:
        raise ValueError(f"float_image: {image.ndim}-D; a 2-D (slow, fast) image is required")
    inside = roi_mask(image.shape, roi)
    values = image[inside].astype(np.float64)
    if np.isnan(values).any():
        raise ValueError(f"float_image contains NaN inside the roi; no {product} value exists for it")
    return image, inside, values


@dataclass(frozen=True)
class ImageStatistics:
    """nanoBragg's post-render statistics.

    max_I: largest rendered value (0 when none is positive); max_pixel: its (fast, slow)
    pixel, the first in row order, None when max_I is 0; mean and rms = sqrt(sum v^2 / (n-1))
    over the rendered pixels; rmsd = sqrt(sum (v - mean)^2 / (n-1)) over the roi pixels
    (nanoBragg does not apply the mask there); n: number of rendered pixels.
    """

    max_I: float
    max_pixel: tuple[int, int] | None
    mean: float
    rms: float
    rmsd: float
    n: int

    def max_position_m(self, pixel_size_m: float = 1e-4, oversample: int = 1) -> tuple[float, float]:
        """Where nanoBragg reports the maximum: the centre of the last sub-pixel of max_pixel (m)."""
        if self.max_pixel is None:
            return (0.0, 0.0)
        sub = pixel_size_m / oversample
        return tuple(sub * (p * oversample + oversample - 1) + sub / 2.0 for p in self.max_pixel)

    def summary_lines(self, pixel_size_m: float = 1e-4, oversample: int = 1) -> list[str]:
        """The two lines nanoBragg prints: ``max_I = ...  at X Y`` and ``mean= ... rms= ... rmsd= ...``."""
        x, y = self.max_position_m(pixel_size_m, oversample)
        return [
            "max_I = %g  at %g %g" % (self.max_I, x, y),
            "mean= %g rms= %g rmsd= %g" % (self.mean, self.rms, self.rmsd),
        ]


def image_statistics(image, roi=None, mask=None) -> ImageStatistics:
    """Statistics of a (slow, fast) float image as nanoBragg computes them (values taken as float32).

    Rendered pixels are those inside roi = (xmin, xmax, ymin, ymax) (inclusive) whose mask
    value is non-zero (mask None: all). Counts below nanoBragg's minimum are raised as it does
    (n = 0 -> mean over 1; n <= 1 -> divisor 1 for rms and rmsd).
    """
    values = host_array(image).astype(np.float32).astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"image: {values.ndim}-D; a 2-D (slow, fast) image is required")
    in_roi = roi_mask(values.shape, roi)
    rendered = in_roi.copy()
    if mask is not None:
        mask_values = host_array(mask)
        if mask_values.shape != values.shape:
            raise ValueError(f"mask: shape {mask_values.shape}; the image shape {values.shape} is required")
        rendered &= mask_values != 0
    selected = values[rendered]
    n = int(selected.size)
    max_I, max_pixel = 0.0, None
    if n and selected.max() > 0.0:
        flat = int(np.argmax(np.where(rendered, values, -np.inf)))
        max_I = float(selected.max())
        max_pixel = (flat % values.shape[1], flat // values.shape[1])
    mean = float(selected.sum()) / max(n, 1)
    divisor = max(n, 2) - 1
    rms = float(np.sqrt(np.sum(selected * selected) / divisor))
    roi_values = values[in_roi]
    rmsd = float(np.sqrt(np.sum((roi_values - mean) ** 2) / (max(roi_values.size, 2) - 1)))
    return ImageStatistics(max_I=max_I, max_pixel=max_pixel, mean=mean, rms=rms, rmsd=rmsd, n=n)
