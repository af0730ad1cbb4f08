"""``python -m rdk_agent``: run the agent.

Exit status 2 for configuration errors (bad camera spec, unusable data dir, bad label schema or
config file, data dir already in use), each with a message that names the fix.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from rdk_agent.auth import TOKEN_ENV, load_or_create_token
from rdk_agent.camera import CAMERA_SPEC_HELP, CameraError, parse_camera_spec
from rdk_agent.config import AgentConfig, ConfigError
from rdk_agent.storage import StoreLocked
from shared_schema import SchemaError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags; unset flags fall back to the config file, the environment, then defaults."""
    p = argparse.ArgumentParser(prog="python -m rdk_agent", description="Weld-inspection agent for RDK boards.")
    p.add_argument("--data-dir", type=Path, help="where captures, the index and the token live (default ./data)")
    p.add_argument("--camera", help=CAMERA_SPEC_HELP + " (default synthetic)")
    p.add_argument(
        "--calibration",
        type=Path,
        help="stereo calibration file of a stereo: camera (default <data-dir>/stereo_calibration.json; "
        "python -m rdk_agent.calibrate writes it)",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the shop network)")
    p.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--labels", type=Path, help="label schema JSON/YAML (default: the weld schema)")
    p.add_argument("--models-dir", type=Path, help="where model.onnx is deployed (default <data-dir>/models)")
    p.add_argument("--config", type=Path, help="JSON file with any AgentConfig setting")
    p.add_argument("--seed", type=int, help="synthetic camera seed")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def _fail(message: str) -> int:
    print(f"rdk_agent: error: {message}", file=sys.stderr)
    return 2


def _check_writable(folder: Path, what: str, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{what} {folder} is not usable ({exc.strerror or exc}); fix its permissions or choose another {flag}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Run the agent; returns the exit status."""
    args = parse_args(argv)
    from rdk_agent.server import serve, tune_malloc

    tune_malloc()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = AgentConfig.build(
            file=args.config,
            data_dir=args.data_dir,
            camera=args.camera,
            calibration=args.calibration,
            host=args.host,
            port=args.port,
            labels=args.labels,
            models_dir=args.models_dir,
            seed=args.seed,
        )
        parse_camera_spec(config.camera)
        _check_writable(config.data_dir, "data dir", "--data-dir")
        _check_writable(config.models_path, "models dir", "--models-dir")
        from rdk_agent.app import create_app
        from rdk_agent.services import load_schema

        load_schema(config)
        token, created = load_or_create_token(config.data_dir)
        app = create_app(config, token=token)
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc))
    except SchemaError as exc:
        return _fail(f"bad label schema {config.labels}: {exc}; fix the file or drop --labels for the weld default")
    except CameraError as exc:
        return _fail(f"{exc} ({CAMERA_SPEC_HELP})")
    except StoreLocked as exc:
        return _fail(str(exc))

    def announce(host: str, port: int) -> None:
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        print(f"Listening on http://{host}:{port}")
        if created:  # the one time the token is shown: the journal must not collect it at every restart
            print(f"Generated a new API token, stored in {config.data_dir / 'token'} (mode 0600).")
            print(f"Operator page: http://{shown}:{port}/?token={token}", flush=True)
        else:
            where = TOKEN_ENV if os.environ.get(TOKEN_ENV) else str(config.data_dir / "token")
            print(f"Using the API token from {where}.")
            print(f"Operator page: http://{shown}:{port}/ (log in with that token)", flush=True)

    serve(app, config, on_ready=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
