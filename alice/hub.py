"""A machine that cannot reach the Hugging Face Hub uses its local hub cache only.

On a machine whose DNS does not know the hub (an air-gapped cluster node), every hub request is retried with
back-off before it fails: about 25 s and a dozen log lines per file, a minute before a model that is not
cached reports so. Importing the package looks the hub's host up once; when it does not resolve (and no proxy
is configured, which would resolve it instead), the process and the engines it starts run offline
(``HF_HUB_OFFLINE=1``, read by the libraries when they are imported): a cached model or data set loads, one that
is not cached fails at once, and the error says how to give it locally (``hint``).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

UNREACHABLE_ENV = "ALICE_HUB_UNREACHABLE"  # set to the hub's host when this process went offline for it
PROXY_ENVS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


def offline_without_hub() -> None:
    """HF_HUB_OFFLINE=1 for this process (and its children) when the hub's host does not resolve; nothing
    when offline mode is already chosen, a proxy is configured, or the host resolves."""
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get(UNREACHABLE_ENV):
        return
    if any(os.environ.get(name) for name in PROXY_ENVS):
        return
    host = hub_host()
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ[UNREACHABLE_ENV] = host


def hint() -> str:
    """What to add to an error about something the hub would have given, when this process went offline."""
    host = os.environ.get(UNREACHABLE_ENV)
    if not host:
        return ""
    return (f" ({host} does not resolve here, so only the local hub cache is used: copy it into the cache, or "
            "give a local folder, .gguf file or JSONL; docs/GPU.md)")
