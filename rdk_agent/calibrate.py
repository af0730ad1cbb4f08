"""``python -m rdk_agent.calibrate``: calibrate a stereo pair from checkerboard views and save the calibration.

Sources of views (one of):

* ``--pairs DIR``: ``<stem>_left.png`` + ``<stem>_right.png`` files (any image suffix);
* ``--camera SPEC``: a stereo provider (``files:DIR``, ``tb:opencv:0``, ``sbs:opencv:0``, ``rdk[:WxH]``, the
  ``stereo:`` prefix optional): ``--views`` pairs with the board found in both images are kept, captured
  ``--interval`` seconds apart (move the board between them) and saved under ``--save-views``;
* ``--simulate N``: N rendered views of a checkerboard seen by a rig with lens distortion (``--no-distortion``
  for a pinhole rig), to try the command without a camera; the rig's true baseline is printed to compare.

Prints progress per view, the RMS reprojection error and the baseline, and saves the calibration with
:meth:`StereoCalibration.save` to ``--out`` (default ``<data-dir>/stereo_calibration.json``), which the
``stereo:`` camera source reads. Exit status: 0 saved, 1 the views do not give a valid calibration (nothing
saved), 2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError
from rdk_agent.camera.stereo.calibrate_core import (
    Board,
    CalibrationFailed,
    View,
    calibrate_stereo,
    detect_pair,
    validate,
)
from rdk_agent.camera.stereo.calibration import DIST_COEFFS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class UsageError(ValueError):
    """Bad arguments or unreadable input (exit status 2)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="python -m rdk_agent.calibrate", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="folder of <stem>_left.png / <stem>_right.png checkerboard pairs")
    src.add_argument("--camera", help="stereo provider: files:DIR, tb:opencv:N, sbs:opencv:N or rdk[:WxH]")
    src.add_argument("--simulate", type=int, metavar="N", help="render N checkerboard pairs of a simulated rig")
    p.add_argument("--pattern", default="9x6", help="inner corners per row x per column (default 9x6)")
    p.add_argument("--square-mm", type=float, default=15.0, help="side of one square in mm (default 15)")
    p.add_argument("--model", choices=sorted(DIST_COEFFS), default="pinhole", help="lens model (default pinhole)")
    p.add_argument("--k3", action="store_true", help="pinhole model: also fit k3 (wide lenses, many views)")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="the agent's data dir (default ./data)")
    p.add_argument("--out", type=Path, help="calibration file (default <data-dir>/stereo_calibration.json)")
    p.add_argument("--views", type=int, default=15, help="--camera: pairs to keep (default 15)")
    p.add_argument("--interval", type=float, default=2.0, help="--camera: seconds between kept pairs (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="--camera: give up after this many seconds")
    p.add_argument("--save-views", type=Path, help="write the pairs used (as --pairs expects) to this folder")
    p.add_argument("--min-views", type=int, default=8, help="fewest usable views accepted (default 8)")
    p.add_argument("--max-rms", type=float, default=1.0, help="largest RMS reprojection error accepted, px (default 1)")
    p.add_argument("--no-distortion", action="store_true", help="--simulate: a pinhole rig without lens distortion")
    p.add_argument("--seed", type=int, default=0, help="--simulate: board poses seed")
    return p.parse_args(argv)


def parse_pattern(text: str) -> tuple[int, int]:
    """``"9x6"`` -> (9, 6); UsageError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", text)
    if not m or min(int(m[1]), int(m[2])) < 3:
        raise UsageError(f"--pattern must be COLSxROWS inner corners, at least 3x3, e.g. 9x6; got {text!r}")
    return int(m[1]), int(m[2])


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"cannot read image {path}")
    return image


def folder_pairs(folder: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, left, right)`` for every ``<stem>_left.*`` with a matching ``<stem>_right.*``, in name order."""
    if not folder.is_dir():
        raise UsageError(f"--pairs {folder}: not a folder")
    lefts = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.endswith("_left"))
    pairs = []
    for left in lefts:
        stem = left.stem[: -len("_left")]
        right = next(
            (left.with_name(f"{stem}_right{s}") for s in IMAGE_SUFFIXES if (folder / f"{stem}_right{s}").exists()), None
        )
        if right is None:
            print(f"view {stem}: no {stem}_right image beside {left.name}; skipped", flush=True)
            continue
        pairs.append((stem, left, right))
    if not pairs:
        raise UsageError(f"--pairs {folder}: no <stem>_left.png / <stem>_right.png pairs found")
    for stem, left, right in pairs:
        yield stem, _read(left), _read(right)


def simulated_pairs(n: int, seed: int, distortion: bool, board: Board) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Rendered checkerboard pairs of :meth:`StereoRig.distorted` (or a pinhole rig)."""
    from rdk_agent.camera.stereo.checkerboard import checkerboard_poses, render_checkerboard_pair
    from rdk_agent.camera.stereo.render import StereoRig

    if n < 1:
        raise UsageError("--simulate needs at least 1 view")
    rig = StereoRig.distorted() if distortion else StereoRig()
    print(f"simulated rig: baseline {rig.baseline_mm:.2f} mm, focal {rig.focal_px:.1f} px, k1 {rig.dist_left[0]:g}")
    poses = checkerboard_poses(n, np.random.default_rng(seed), rig, board.pattern, board.square_mm)
    for i, (rvec, tvec) in enumerate(poses):
        left, right = render_checkerboard_pair(rig, rvec, tvec, board.pattern, board.square_mm, supersample=3)
        yield f"sim{i:02d}", left, right


def camera_pairs(spec: str, args: argparse.Namespace, board: Board) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Pairs from a stereo provider; only those with the board in both images count toward ``--views``."""
    from rdk_agent.camera import parse_stereo_spec
    from rdk_agent.camera.stereo.source import open_provider

    spec = spec[len("stereo:") :] if spec.startswith("stereo:") else spec
    try:
        provider = open_provider(*parse_stereo_spec(spec))
    except (ValueError, CameraError) as exc:
        raise UsageError(str(exc)) from None
    kept, deadline, last = 0, time.monotonic() + args.timeout, -float("inf")
    try:
        while kept < args.views:
            if time.monotonic() > deadline:
                raise UsageError(f"--camera: only {kept} of {args.views} views with the board in {args.timeout:g} s")
            left, right, _ = provider.read_pair()
            if time.monotonic() - last < args.interval:
                continue
            name = f"cam{kept:02d}"
            if isinstance(detect_pair(name, left, right, board), str):
                print(f"waiting for the whole board in both views ({kept}/{args.views} kept)", flush=True)
                time.sleep(min(0.5, args.interval))
                continue
            kept, last = kept + 1, time.monotonic()
            yield name, left, right
    finally:
        provider.close()


def collect(source: Iterator[tuple[str, np.ndarray, np.ndarray]], board: Board, save: Path | None):
    """Detect corners view by view, printing progress; returns (views, image_size, views_seen)."""
    views: list[View] = []
    size: tuple[int, int] | None = None
    seen = 0
    for name, left, right in source:
        seen += 1
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save / f"{name}_left.png"), left)
            cv2.imwrite(str(save / f"{name}_right.png"), right)
        this = (left.shape[1], left.shape[0])
        if size is not None and this != size:
            print(f"view {name}: {this[0]}x{this[1]} differs from the first view's {size[0]}x{size[1]}; skipped")
            continue
        found = detect_pair(name, left, right, board)
        if isinstance(found, str):
            print(found, flush=True)
            continue
        size = this
        views.append(found)
        print(f"view {name}: {len(found.left)} corners in both images", flush=True)
    return views, size, seen


def run(args: argparse.Namespace) -> int:
    """The command; returns the exit status."""
    board = Board(parse_pattern(args.pattern), args.square_mm)
    if board.square_mm <= 0:
        raise UsageError("--square-mm must be positive")
    if args.pairs is not None:
        source = folder_pairs(args.pairs)
    elif args.simulate is not None:
        source = simulated_pairs(args.simulate, args.seed, not args.no_distortion, board)
    else:
        source = camera_pairs(args.camera, args, board)
    views, size, seen = collect(source, board, args.save_views)
    if size is None or len(views) < 3:
        print(
            f"error: the board was found in both images of {len(views)} of {seen} views; at least "
            f"{max(3, args.min_views)} are needed: check --pattern ({args.pattern} inner corners) and that the "
            "whole board is visible, sharp and evenly lit in both cameras",
            file=sys.stderr,
        )
        return 1
    try:
        result = calibrate_stereo(views, size, board, args.model, args.k3)
    except CalibrationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cal = result.calibration
    worst = max(result.view_errors, key=result.view_errors.__getitem__)
    print(f"used {len(views)} of {seen} views at {size[0]}x{size[1]}, lens model {cal.model} ({result.method})")
    print(
        f"RMS reprojection error: {result.rms_stereo:.3f} px (left {result.rms_left:.3f}, "
        f"right {result.rms_right:.3f}); worst view {worst} {result.view_errors[worst]:.3f} px"
    )
    print(f"baseline: {cal.baseline_mm:.2f} mm; focal {cal.K1[0, 0]:.1f} / {cal.K2[0, 0]:.1f} px")
    problems = validate(result, len(views), args.min_views, args.max_rms)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("nothing saved", file=sys.stderr)
        return 1
    out = args.out or args.data_dir / "stereo_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cal.save(out)
    print(f"saved {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CameraError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
