"""Starting or joining Ray, one way for every command that uses it (`reconstruct run`, `detector score`
with `--executor ray`), and the environment its workers get."""
from __future__ import annotations

import os
import socket

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
