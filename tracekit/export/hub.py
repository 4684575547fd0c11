"""``tracekit push``: every config to a Hub dataset repo, and a generated dataset card beside them.

Each config goes through ``datasets``' own ``push_to_hub(repo_id, config_name=...)``, which
writes ``<config>/<split>-*.parquet`` and merges the config into the card's YAML. Then the card
is rebuilt from the store and merged with what the repo's README.md already holds (see
:func:`tracekit.export.card.merge_card`) and committed with the trace-length histogram, only
when it changed, so pushing again changes nothing and a grown store updates the same repo.

The token comes from ``huggingface_hub`` (``HF_TOKEN`` or ``hf auth login``); tracekit never
prints, logs or stores it, and Hub failures become one :class:`HubError` line. Works with
``huggingface_hub`` 1.x and 2.x (only names both have are used).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Any

from tracekit.errors import TracekitError, require
from tracekit.export.card import HISTOGRAM
from tracekit.export.hf import build_card, config_frames, dataset_dict
from tracekit.export.lengths import load_tokenizer
from tracekit.store import Store

_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class HubError(TracekitError):
    """A Hub request failed (no token, no permission, wrong repo type, network); one line with a hint."""


def parse_repo_id(text: str) -> str:
    """``ORG/NAME`` from ``ORG/NAME``, ``datasets/ORG/NAME`` or a dataset URL; a model or Space is an error.

    Examples
    --------
    >>> parse_repo_id("https://huggingface.co/datasets/me/traces")
    'me/traces'
    >>> parse_repo_id("https://huggingface.co/me/model")
    Traceback (most recent call last):
    ...
    tracekit.export.hub.HubError: 'https://huggingface.co/me/model' names a model repository, ...
    """
    raw = text.strip().rstrip("/")
    path = re.sub(r"^https?://[^/]+/", "", raw)
    parts = path.split("/")
    if parts[0] in ("models", "spaces") or (raw != path and parts[0] != "datasets"):
        kind = "Space" if parts[0] == "spaces" else "model"
        msg = (
            f"{text!r} names a {kind} repository, not a dataset; tracekit pushes datasets.\n"
            "Hint: give a dataset repo id such as ORG/NAME or datasets/ORG/NAME."
        )
        raise HubError(msg)
    if parts[0] == "datasets":
        parts = parts[1:]
    repo_id = "/".join(parts[:2])
    if len(parts) != 2 or not _REPO_RE.match(repo_id):
        raise HubError(
            f"{text!r} is not a repo id.\nHint: write it as ORG/NAME (e.g. my-org/countdown-traces)."
        )
    return repo_id


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _network_failure(exc: BaseException) -> bool:
    seen = exc
    while seen is not None:
        name = type(seen).__name__
        if name in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "OfflineModeIsEnabled",
            "NetworkError",
        ) or isinstance(seen, ConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def hub_errors(repo_id: str, endpoint: str):
    """Turn ``huggingface_hub`` failures into one-line :class:`HubError` messages (never with the token)."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    where = f"datasets/{repo_id} on {endpoint}"
    try:
        yield
    except RepositoryNotFoundError:
        msg = (
            f"{where}: repository not found, or the token cannot see it.\nHint: check the name and the token."
        )
        raise HubError(msg) from None
    except HfHubHTTPError as exc:
        status = _status(exc)
        if status == 401:
            msg = f"{where}: the Hub refused the token (HTTP 401).\nHint: `hf auth login` or set a valid HF_TOKEN."
        elif status == 403:
            msg = (
                f"{where}: this token may not write there (HTTP 403).\n"
                "Hint: use a token with write access to the namespace."
            )
        elif status in (409, 412):  # the commit's parent is no longer the branch head
            msg = (
                f"{where}: the Hub refused a concurrent commit (HTTP {status}): another push to this repo "
                "committed first.\nHint: retry the push (pushing again is idempotent: what landed stays as it is)."
            )
        else:
            msg = f"{where}: the Hub answered HTTP {status}.\nHint: try again later; check the Hub's status page."
        raise HubError(msg) from None
    except Exception as exc:  # httpx/httpx2 connection errors share no base class with OSError
        if not _network_failure(exc):
            raise
        if type(exc).__name__ == "OfflineModeIsEnabled":
            msg = (
                f"cannot push to {where}: offline mode is on.\n"
                "Hint: unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) for this command."
            )
            raise HubError(msg) from None
        msg = (
            f"cannot reach the Hub at {endpoint} ({type(exc).__name__}).\n"
            "Hint: check the network, HF_ENDPOINT, and that HF_HUB_OFFLINE is not set."
        )
        raise HubError(msg) from None


def _read_card(api, repo_id: str, revision: str | None) -> str | None:
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RevisionNotFoundError):  # no card yet, or a branch the push creates
        return None
    from tracekit.export.card import read_card_file, split_card

    text = read_card_file(Path(path))
    split_card(text, f"README.md of datasets/{repo_id}")  # checked before anything is pushed
    return text


def _ensure_dataset_repo(api, repo_id: str, *, private: bool, explicit: bool) -> None:
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        api.repo_info(repo_id, repo_type="dataset")
        return
    except RepositoryNotFoundError:
        pass
    if not explicit:
        try:
            api.repo_info(repo_id, repo_type="model")
        except RepositoryNotFoundError:
            pass
        else:
            msg = (
                f"{repo_id} is a model repository, not a dataset.\n"
                f"Hint: pick another name, or push to datasets/{repo_id} to create a dataset of the same name."
            )
            raise HubError(msg)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)


def check_staging() -> None:
    """Refuse a temporary space (where the card's files are staged, in a new folder of their
    own) that is or lies inside a tracekit store (``TMPDIR`` pointed into one)."""
    from tracekit.places import check_inside_no_store

    check_inside_no_store(tempfile.gettempdir(), "push: the temporary folder (TMPDIR)")


def _quiet_clients(hub) -> None:
    """No progress bars or info logs from datasets/huggingface_hub: tracekit prints one line per config."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hub.utils.disable_progress_bars()


def push(
    store: Store,
    repo: str,
    *,
    private: bool = False,
    tables: list[str] | None = None,
    revision: str | None = None,
    formats: list[str] | None = None,
    max_length: int = 8192,
    tokenizer: str | None = None,
    echo=print,
) -> dict[str, Any]:
    """Push ``store``'s configs and card to the dataset repo ``repo``; return what was pushed.

    ``tables`` picks configs (default: all that have rows), ``revision`` a branch (created when
    missing), ``max_length``/``tokenizer`` the card's length histogram.
    """
    hub = require("huggingface_hub", "hub")
    repo_id = parse_repo_id(repo)
    explicit = repo.strip().startswith(("datasets/", "http"))
    if not hub.get_token():
        msg = (
            "no Hugging Face token found.\n"
            "Hint: run `hf auth login`, or set HF_TOKEN in the environment (it is never printed or stored)."
        )
        raise HubError(msg)
    endpoint = hub.constants.ENDPOINT
    check_staging()
    frames = config_frames(store, tables, formats=formats)
    if not frames:
        raise HubError(f"nothing to push from {store.root}: every config is empty.\nHint: build data first.")
    counts = {c: {s: f.height for s, f in parts.items()} for c, parts in frames.items()}
    _quiet_clients(hub)
    api = hub.HfApi()
    with hub_errors(repo_id, endpoint):
        _ensure_dataset_repo(api, repo_id, private=private, explicit=explicit)
        _read_card(api, repo_id, revision)  # a card that cannot be merged is refused before any push
        for config, parts in frames.items():
            echo(f"pushing {config}: " + ", ".join(f"{s} {n}" for s, n in counts[config].items()))
            dataset_dict(parts).push_to_hub(
                repo_id,
                config_name=config,
                private=private,
                revision=revision,
                commit_message=f"tracekit: {config} config",
            )
        with tempfile.TemporaryDirectory() as tmp:
            existing = _read_card(api, repo_id, revision)  # again: the config pushes changed its YAML
            text = build_card(
                store,
                counts,
                Path(tmp),
                repo_id=repo_id,
                max_length=max_length,
                tokenizer=load_tokenizer(tokenizer),
                existing=existing,
                where=f"README.md of datasets/{repo_id}",
            )
            changed = text != existing
            if changed:
                ops = [hub.CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8"))]
                if (Path(tmp) / HISTOGRAM).exists():
                    ops.append(
                        hub.CommitOperationAdd(
                            path_in_repo=HISTOGRAM, path_or_fileobj=str(Path(tmp) / HISTOGRAM)
                        )
                    )
                api.create_commit(
                    repo_id,
                    operations=ops,
                    commit_message="tracekit: dataset card",
                    repo_type="dataset",
                    revision=revision,
                )
    echo(("updated" if changed else "unchanged") + f" dataset card of {repo_id}")
    return {"repo_id": repo_id, "endpoint": endpoint, "counts": counts, "card_changed": changed}
