"""MNIST download, as torchvision does it: only when asked, from mirrors, each file checked.

``load_dataset("mnist")`` with no ``path`` reads the cache folder (:func:`mnist_dir`: ``$KIT_DATA/mnist``,
else the platform's user cache dir, e.g. ``~/.cache/rdfia-mlp-kit/mnist`` on Linux). Nothing is fetched
unless asked (``download=True``, the CLI's ``--download``); then each of the four ``.gz`` archives is
fetched from the first mirror that answers (``KIT_MNIST_MIRRORS``, a comma-separated list of base URLs,
replaces the default ones) and kept only if its MD5 is the one torchvision publishes.

What makes the download safe to interrupt and to trust:

* bytes go to ``<name>.part``; a ``.part`` left by a cut connection or a killed process is resumed with
  an HTTP ``Range`` request (a server that ignores it sends the whole file, which replaces the part);
* a file becomes ``<name>`` only through :func:`os.replace` after its checksum matched, so a file under
  its final name is always a whole, verified one;
* a dropped connection, a timeout or a 5xx is retried (``attempts`` a mirror, back-off doubling from
  ``backoff`` seconds); a 404 or a wrong checksum moves to the next mirror at once;
* when no mirror gave a good file, one :class:`KitError` line says what each mirror answered.

Only the standard library (``urllib.request``, ``hashlib``) plus ``platformdirs`` and ``tqdm``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from frameworks._errors import KitError

#: The four archives and the MD5s torchvision publishes for them (torchvision/datasets/mnist.py).
CHECKSUMS: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: torchvision's mirrors, in its order; ``KIT_MNIST_MIRRORS`` replaces them.
DEFAULT_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
DATA_ENV, MIRRORS_ENV = "KIT_DATA", "KIT_MNIST_MIRRORS"
APP_NAME = "rdfia-mlp-kit"
CHUNK = 1 << 16
#: The defaults of :func:`download_mnist`'s ``attempts`` and ``backoff`` (seconds), read at each call.
ATTEMPTS, BACKOFF_S = 3, 1.0
#: Statuses worth asking the same mirror again for; any other HTTP error moves to the next mirror.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth retrying on the same mirror (the ``.part`` is kept and resumed); ``answered``: whether
    the server answered at all (False for a refused connection, an unknown host, a timeout before any reply)."""

    def __init__(self, message: str, *, answered: bool = True) -> None:
        super().__init__(message)
        self.answered = answered


class _Refused(Exception):
    """A failure that the next mirror may not have (404, a wrong checksum)."""


def data_dir() -> Path:
    """The kit's data cache: ``$KIT_DATA`` when set, else the platform's user cache dir for the kit."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def mnist_dir() -> Path:
    """Where ``load_dataset("mnist")`` looks when no ``path`` is given, and where it downloads to."""
    return data_dir() / "mnist"


def mirrors() -> tuple[str, ...]:
    """The base URLs to try in order: ``$KIT_MNIST_MIRRORS`` (comma-separated) or :data:`DEFAULT_MIRRORS`."""
    env = os.environ.get(MIRRORS_ENV, "")
    urls = tuple(u.strip() for u in env.split(",") if u.strip()) or DEFAULT_MIRRORS
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise KitError(f"{MIRRORS_ENV}: {url!r} is not an http:// or https:// base URL; expected a comma-"
                           "separated list like https://ossci-datasets.s3.amazonaws.com/mnist/.")
    return tuple(u if u.endswith("/") else u + "/" for u in urls)


def missing_error(folder: Path) -> KitError:
    """The error for MNIST absent from ``folder``: where to put it and how to download it."""
    return KitError(
        f"MNIST is not in {folder}: download it with load_dataset('mnist', download=True) or the CLI's "
        f"--download (from {', '.join(mirrors())}), or put {', '.join(CHECKSUMS)} there yourself "
        f"(set {DATA_ENV} to use another cache folder, or give path= / --data-dir)."
    )


def md5(file: Path) -> str:
    """The hex MD5 of ``file``, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_mnist(folder: str | Path | None = None, *, progress: bool | None = None, attempts: int | None = None,
                   backoff: float | None = None, timeout: float = 30.0,
                   checksums: Mapping[str, str] | None = None) -> Path:
    """Fetch the four MNIST archives into ``folder`` (default :func:`mnist_dir`) and return it.

    A file already there with the right MD5 is kept; any other is fetched again.

    Args:
      folder: where the ``.gz`` files go (made if absent).
      progress: a byte bar a file on stderr; None: only when stderr is a terminal.
      attempts: tries a mirror gets for one file before the next mirror (dropped connections, timeouts, 5xx);
        default :data:`ATTEMPTS`.
      backoff: seconds before the second try, doubling after each further one; default :data:`BACKOFF_S`.
      timeout: seconds a connection may stay silent.
      checksums: file name -> MD5; default :data:`CHECKSUMS` (the published ones).

    Raises:
      KitError: no mirror gave a good copy of a file (each mirror's answer in the message), or the folder
        cannot be written.
    """
    attempts = ATTEMPTS if attempts is None else attempts
    backoff = BACKOFF_S if backoff is None else backoff
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise KitError(f"download_mnist: attempts must be a positive integer, got {attempts!r}.")
    folder = mnist_dir() if folder is None else Path(folder)
    table = CHECKSUMS if checksums is None else checksums
    urls = mirrors()
    show = sys.stderr.isatty() if progress is None else progress
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KitError(f"cannot create the MNIST folder {folder}: {err.strerror or err}.") from None
    for name, expected in table.items():
        target = folder / name
        if target.is_file() and md5(target) == expected:
            continue
        _fetch(name, expected, target, urls, show=show, attempts=attempts, backoff=backoff, timeout=timeout)
    return folder


def _fetch(name: str, expected: str, target: Path, urls: Sequence[str], *, show: bool, attempts: int,
           backoff: float, timeout: float) -> None:
    """``target`` from the first mirror that gives bytes with MD5 ``expected``, renamed in place atomically."""
    part = target.with_name(target.name + ".part")
    failures: list[str] = []
    offline = True  # until some server answers
    for base in urls:
        url = base + name
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                resumed = _get(url, part, timeout=timeout, show=show)
            except _Transient as err:
                last, offline = f"{url}: {err}", offline and not err.answered
                continue
            except _Refused as err:
                last, offline = f"{url}: {err}", False
                break
            found = md5(part)
            if found == expected:
                os.replace(part, target)
                return
            part.unlink()
            last, offline = f"{url}: checksum refused (MD5 {found}, published {expected})", False
            if not resumed:  # a stale part may have spoilt a resumed copy: that one gets a fresh try
                break
        failures.append(last)
    what = "no mirror answered (offline?)" if offline else "no mirror gave a good copy"
    raise KitError(f"could not download {name}: {what}: {'; '.join(failures)}. Set {MIRRORS_ENV} to mirrors "
                   f"you can reach, or put the file in {target.parent} yourself.")


def _get(url: str, part: Path, *, timeout: float, show: bool) -> bool:
    """Append ``url``'s bytes to ``part`` (resuming past its current size); raise unless the body came whole.
    Returns whether the part was resumed (its first bytes came from an earlier try)."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"{APP_NAME} (python urllib)"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part is as long as (or longer than) the file: start again
            part.unlink()
            raise _Transient("HTTP 416 (range not satisfiable), starting over") from None
        kind = _Transient if err.code in RETRY_STATUSES else _Refused
        raise kind(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _Transient(_one_line(err.reason), answered=False) from None
    except (OSError, http.client.HTTPException) as err:  # a timeout, torn headers
        raise _Transient(_one_line(err), answered=False) from None
    try:
        with response:
            if response.status == 206:
                start = _range_start(response.headers.get("Content-Range", ""))
                if start != have:
                    part.unlink()
                    raise _Transient(f"asked for bytes {have}-, the server sent {start}- (starting over)")
            else:
                have = 0  # the whole file: it replaces the part
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if have else "wb") as out:
                got = _copy(response, out, have=have, total=total, desc=url.rsplit("/", 1)[-1], show=show)
    except (OSError, http.client.HTTPException) as err:  # reset or timeout mid-body: what came is kept
        raise _Transient(f"{_one_line(err)} mid-file (kept, to resume)") from None
    if total is not None and got < total:
        raise _Transient(f"connection closed after {got} bytes of {total} (kept, to resume)")
    return have > 0


def _one_line(err: object) -> str:
    """``Type: message`` of an exception (or a reason string), on one line."""
    text = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)
    return " ".join(text.split())


def _range_start(content_range: str) -> int:
    """The first byte of ``Content-Range: bytes START-END/TOTAL`` (-1 when unreadable)."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _copy(response: http.client.HTTPResponse, out: BinaryIO, *, have: int, total: int | None, desc: str,
          show: bool) -> int:
    """Copy the body to ``out`` chunk by chunk under a byte bar; the bytes ``out`` then holds."""
    from tqdm import tqdm

    with tqdm(total=total, initial=have, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
              file=sys.stderr, disable=not show) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            have += len(chunk)
            bar.update(len(chunk))
    return have
