"""Typer options shared by the commands that read images, declared once."""

from __future__ import annotations

import typer

from ..data import WINDOWS

INTENSITY_HELP = (
    "How intensities map to SAM's 0–255 input: auto (uint8 as is, else 1–99 percentile), "
    "percentile, ct (with --window), mr, none. A volume gets one mapping for all its slices."
)
WINDOW_HELP = f"CT window: {', '.join(WINDOWS)} (with --intensity ct, or auto)."


def intensity_option():
    """``--intensity``: the intensity mode of :class:`samforge.data.intensity.IntensitySettings`."""
    return typer.Option("auto", "--intensity", help=INTENSITY_HELP)


def window_option():
    """``--window``: the CT window preset of :class:`samforge.data.intensity.IntensitySettings`."""
    return typer.Option(None, "--window", help=WINDOW_HELP)


def connectivity_2d_option():
    """``--connectivity``: which pixels join one object (2D protocols; medico-sam's default 2)."""
    return typer.Option(
        2, "--connectivity", min=1, max=2, help="Objects: 2 = 8-connected (medico-sam's), 1 = 4."
    )


def rounds_option():
    """``--rounds``: predictions per object in the interactive protocols."""
    return typer.Option(8, min=1, help="Predictions per object: the start + corrections.")


def min_size_option():
    """``--min-size``: the smallest object the 2D protocols prompt."""
    return typer.Option(20, min=0, help="Smallest object (connected component) in pixels.")


def limit_option():
    """``--limit``: images per dataset."""
    return typer.Option(None, min=1, help="At most this many images per dataset.")
