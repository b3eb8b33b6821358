"""blase-fits (issue 15): a cutouts step over FITS mosaics that astropy writes here, at two window sizes, run as
a real `blase step`; cutouts equal the mosaic's pixels, carry sky coordinates from the WCS, and a file that is
not FITS is a bad record; the TUI preview of a .fits artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("blase_fits", reason="blase-fits is not installed: pip install -e plugins/blase-fits")
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

MAIN = '''
import numpy as np

from blase_tui import Extract, Load, step


@step
def cutouts(ctx, window: int = 64):
    """Cut the mosaics into window x window stamps (seed 004's first step)."""
    count = 0
    for batch in Extract(batch_size=50).load_fits("data/mosaics", window=window):
        Load().save_to_filesystem(batch, f"data/cutouts_{window}")
        count += len(batch)
    ctx.log_metric("cutouts", count)
'''


def blase(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


def mosaic(path: Path, height: int, width: int, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).normal(100, 5, (height, width)).astype(np.float32)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [width / 2, height / 2]
    wcs.wcs.cdelt = [-0.0002, 0.0002]
    header = wcs.to_header()
    header["OBJECT"] = "COSMOS"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header, name="SCI")]).writeto(path)
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "survey"
    (root / "data" / "mosaics").mkdir(parents=True)
    (root / "blase.toml").write_text('[project]\nname = "survey"\n\n[plugins]\nenabled = ["fits"]\n')
    (root / "main.py").write_text(MAIN)
    mosaic(root / "data" / "mosaics" / "a.fits", 300, 400, 0)
    mosaic(root / "data" / "mosaics" / "b.fits", 256, 256, 1)
    return root


def test_the_plugin_is_listed_and_enabled(project: Path) -> None:
    out = json.loads(blase("plugins", "list", "--json", cwd=project).stdout)
    kinds = {(r["kind"], r["name"]): r for r in out["installed"]}
    assert kinds[("readers", "fits")]["distribution"] == "blase-fits" and kinds[("readers", "fits")]["enabled"]
    assert ("previews", ".fits") in kinds


@pytest.mark.parametrize("window", [64, 128])
def test_cutouts_at_two_window_sizes(project: Path, window: int) -> None:
    proc = blase("step", "cutouts", "--set", f"window={window}", cwd=project)
    assert proc.returncode == 0, proc.stderr
    expected = (300 // window) * (400 // window) + (256 // window) ** 2
    run = json.loads(blase("runs", "show", "latest", "--json", cwd=project).stdout)
    assert run["steps"][0]["metrics"]["cutouts"] == expected
    from blase_tui.modules.shards import open_split

    split = open_split(project / "data" / f"cutouts_{window}")
    keys = split.keys.tolist()
    assert len(keys) == expected and f"a.fits:1:{window}:{window}" in keys
    columns = {}
    for _, cols in split.batches(1000, columns=["image", "x", "y", "ra", "dec"]):
        for k, v in cols.items():
            columns.setdefault(k, []).append(np.asarray(v))
    images = np.concatenate(columns["image"])
    assert images.shape == (expected, window, window) and images.dtype == np.float32
    original = fits.getdata(project / "data" / "mosaics" / "a.fits", ext=1)
    at = keys.index(f"a.fits:1:{window}:{window}")
    assert np.array_equal(images[at], original[window:2 * window, window:2 * window])
    ra, dec = np.concatenate(columns["ra"])[at], np.concatenate(columns["dec"])[at]
    wcs = WCS(fits.getheader(project / "data" / "mosaics" / "a.fits", ext=1))
    assert (ra, dec) == pytest.approx(tuple(wcs.wcs_pix2world([[window * 1.5 - 0.5, window * 1.5 - 0.5]], 0)[0]))
    assert {d["path"] for d in run["steps"][0]["datasets"] if d["role"] == "input"} >= {"data/mosaics"}


def test_a_file_that_is_not_fits_is_a_bad_record(project: Path) -> None:
    (project / "data" / "mosaics" / "broken.fits").write_bytes(b"SIMPLE  =   nonsense")
    proc = blase("step", "cutouts", "--set", "window=128", cwd=project)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(blase("runs", "show", "latest", "--json", cwd=project).stdout)
    assert run["steps"][0]["metrics"]["cutouts"] == 2 * 3 + 4
    bad = (project / "runs" / run["id"] / "cutouts" / "bad_records.jsonl").read_text()
    assert "broken.fits" in bad and "not a readable FITS file" in bad


def test_the_preview_shows_the_hdus_and_the_image(project: Path) -> None:
    import io

    from rich.console import Console

    from blase_tui.render import render_preview

    console = Console(width=100, file=io.StringIO(), record=True)
    console.print(render_preview(project / "data" / "mosaics" / "a.fits"))
    shown = console.export_text()
    assert "FITS · 2 HDUs" in shown and "SCI" in shown and "300x400" in shown and "OBJECT = COSMOS" in shown
