"""Starting or joining Ray, one way for every command that uses it (`reconstruct run`, `detector score`
with `--executor ray`), and the environment its workers get."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from typing import Iterator

from .errors import UsageError, first_line

# Environment the workers need, forwarded into their Ray runtime env when set in the driver.
# Object-store endpoints and regions travel; credentials do not (workers use their own: a local
# Ray inherits the driver's environment, cluster nodes have roles or mounted secrets).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HARDSPOOF_OFFLINE", "HARDSPOOF_MODELS",
                 "HF_HOME", "TORCH_HOME", "OMP_NUM_THREADS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "STORAGE_EMULATOR_HOST")


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def check_address(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast (one line) when a ray://host:port address does not answer."""
    if not address.startswith("ray://"):
        return
    host, _, port = address[len("ray://"):].rpartition(":")
    try:
        with socket.create_connection((host, int(port or 10001)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as e:
        raise UsageError(f"Ray cluster at {address} does not answer ({e}); check the address and that the head runs")


def init_ray(address: str | None) -> bool:
    """Start or join Ray; True when this call started it (and so must shut it down).

    Without --ray-address, RAY_ADDRESS (set by `ray job submit` and KubeRay) is joined if set;
    otherwise a local Ray sized to this machine is started.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_address(address)
    if ray.is_initialized():
        return False
    kwargs = dict(runtime_env={"env_vars": forwarded_env()}, log_to_driver=False, include_dashboard=False)
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as e:
            raise UsageError(f"cannot join Ray at {address}: {first_line(e)}") from None
    else:  # "local": a Ray of our own even when another one runs here (plain init would join it, then refuse num_cpus)
        ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
    return True


# Lines Ray's C++ core writes straight to the driver's stderr (fd 2) that ask nothing of a user: dropped by
# `quiet_ray_notices`. Ray Data hands every pool actor a handle of its own (its actor-location tracker), which
# Ray's core reports at error level as "constructor arguments in the object store and max_restarts > 0"
# for every actor (ray-project/ray#57733); our constructor arguments are a few strings and numbers, and a
# killed actor is restarted and its batch redone (tests/reconstruct/test_ray.py).
RAY_NOTICES = (b"has constructor arguments in the object store and max_restarts > 0",)


def _drop_notices(line: bytes, notices: tuple[bytes, ...]) -> bytes:
    return b"" if any(n in line for n in notices) else line


def _pump(read_fd: int, write_fd: int, notices: tuple[bytes, ...]) -> None:
    """Copy read_fd to write_fd until EOF, whole lines that hold a notice left out. A line of Ray's C++ log
    (it starts with '[') is held until its newline; anything else (a progress bar's '\r' updates) passes at once."""
    held = b""
    while chunk := os.read(read_fd, 65536):
        held += chunk
        *lines, held = held.split(b"\n")
        out = b"".join(_drop_notices(line + b"\n", notices) for line in lines)
        if held and not held.lstrip(b"\r").startswith(b"["):
            out, held = out + held, b""
        if out:
            os.write(write_fd, out)
    if held:
        os.write(write_fd, _drop_notices(held, notices))


@contextlib.contextmanager
def quiet_ray_notices(notices: tuple[bytes, ...] = RAY_NOTICES) -> Iterator[None]:
    """While the block runs, this process's stderr (fd 2, where Ray's C++ core logs) goes through a filter
    that leaves out the lines holding one of `notices` and passes every other byte on. Enter it after Ray is
    started (processes started inside the block would inherit the filtered stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    pump = threading.Thread(target=_pump, args=(read_fd, saved, notices), name="ray-notices", daemon=True)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump reads to EOF and stops
        pump.join(timeout=5)
        if not pump.is_alive():  # else a process started in the block still holds the pipe: leave its ends open
            os.close(read_fd)
            os.close(saved)
