"""The MNIST download against real local mirrors: ``http.server`` on 127.0.0.1 in a thread.

Each mirror serves four small generated IDX archives (their MD5s patched in as the expected ones) and can
be told to cut a file's first transfer halfway, to serve a corrupt copy, to ignore ``Range``, or to have no
files (404). ``socket.create_connection`` is guarded: a connection to anything but 127.0.0.1 fails the test,
so no test here can reach the default mirrors.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from frameworks import KitError, load_dataset
from frameworks import _download as dl

SHAPES = {"train-images-idx3-ubyte": (12, 28, 28), "train-labels-idx1-ubyte": (12,),
          "t10k-images-idx3-ubyte": (4, 28, 28), "t10k-labels-idx1-ubyte": (4,)}


def make_archives() -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """Four small gzipped IDX files (random pixels, digit labels) and the arrays they hold."""
    rng = np.random.default_rng(15)
    archives, arrays = {}, {}
    for name, shape in SHAPES.items():
        array = rng.integers(0, 10 if len(shape) == 1 else 256, size=shape, dtype=np.uint8)
        magic = 0x00000801 if len(shape) == 1 else 0x00000803
        raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape) + array.tobytes()
        archives[name + ".gz"], arrays[name] = gzip.compress(raw, mtime=0), array
    return archives, arrays


ARCHIVES, ARRAYS = make_archives()
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


class Mirror:
    """One local mirror: what it serves, how it misbehaves, and every request it saw (file, Range header)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.cut: set[str] = set()  # files whose next transfer stops halfway
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                wanted = self.headers.get("Range")
                mirror.requests.append((name, wanted))
                if name not in mirror.files:
                    self.send_error(404)
                    return
                data, start = mirror.files[name], 0
                if wanted and not mirror.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in mirror.cut:  # promise the whole body, send half, close the connection
                    mirror.cut.discard(name)
                    body = body[: len(body) // 2]
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Mirror]]:
    """Two good local mirrors, listed in KIT_MNIST_MIRRORS; the cache in tmp_path; loopback-only sockets."""
    servers = [Mirror(ARCHIVES), Mirror(ARCHIVES)]
    monkeypatch.setenv("KIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("KIT_MNIST_MIRRORS", ",".join(m.url for m in servers))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(dl, "CHECKSUMS", {name: hashlib.md5(data).hexdigest() for name, data in ARCHIVES.items()})
    monkeypatch.setattr(dl, "BACKOFF_S", 0.001)
    connect = socket.create_connection

    def loopback_only(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        assert address[0] == "127.0.0.1", f"a test tried to reach {address}"
        return connect(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", loopback_only)
    yield servers
    for server in servers:
        server.close()


def cache() -> Path:
    return dl.mnist_dir()


def check_loaded(data) -> None:
    np.testing.assert_array_equal(data.Xtrain, ARRAYS["train-images-idx3-ubyte"].reshape(12, 784) / 255)
    np.testing.assert_array_equal(data.Ytest, np.eye(10)[ARRAYS["t10k-labels-idx1-ubyte"]])


def check_clean(folder: Path, names=ARCHIVES) -> None:
    """Only verified archives under their final names, no ``.part`` left."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for name in names:
        assert (folder / name).read_bytes() == ARCHIVES[name]


def test_absent_then_download_then_cached(mirrors):
    with pytest.raises(KitError, match=rf"MNIST is not in {cache()}.*download=True.*--download"):
        load_dataset("mnist")
    assert not mirrors[0].requests  # nothing is fetched unless asked
    check_loaded(load_dataset("mnist", download=True))
    check_clean(cache())
    assert mirrors[0].requests == [(name, None) for name in ARCHIVES] and not mirrors[1].requests
    check_loaded(load_dataset("mnist"))  # now from the cache, no download asked
    load_dataset("mnist", download=True)  # intact files are kept
    assert len(mirrors[0].requests) == 4


def test_corrupt_file_refused(mirrors):
    bad = bytearray(ARCHIVES[TRAIN_IMAGES])
    bad[len(bad) // 2] ^= 0xFF
    mirrors[0].files[TRAIN_IMAGES] = bytes(bad)
    dl.download_mnist()  # the first mirror's copy is refused, the second's taken
    check_clean(cache())
    assert mirrors[1].requests == [(TRAIN_IMAGES, None)]
    mirrors[1].files[TRAIN_IMAGES] = bytes(bad)
    (cache() / TRAIN_IMAGES).write_bytes(b"spoilt")  # a damaged file in the cache is fetched again
    with pytest.raises(KitError, match=rf"could not download {TRAIN_IMAGES}: no mirror gave a good copy:.*"
                                       "checksum refused .*checksum refused"):
        dl.download_mnist()
    assert not (cache() / (TRAIN_IMAGES + ".part")).exists()  # nothing bad left under any name it could take


def test_cut_connection_resumes_with_range(mirrors):
    mirrors[0].cut.add(TRAIN_IMAGES)
    check_loaded(load_dataset("mnist", download=True))
    check_clean(cache())
    half = len(ARCHIVES[TRAIN_IMAGES]) // 2
    first = [r for r in mirrors[0].requests if r[0] == TRAIN_IMAGES]
    assert first == [(TRAIN_IMAGES, None), (TRAIN_IMAGES, f"bytes={half}-")]  # the same mirror, resumed
    assert not mirrors[1].requests


def test_left_part_resumed_or_restarted(mirrors):
    folder = cache()
    folder.mkdir(parents=True)
    part = folder / (TRAIN_IMAGES + ".part")
    part.write_bytes(b"x" * 100)  # a killed process's stale part: resumed, refused, then fetched whole
    dl.download_mnist()
    check_clean(folder)
    assert [r for r in mirrors[0].requests if r[0] == TRAIN_IMAGES] == [(TRAIN_IMAGES, "bytes=100-"),
                                                                         (TRAIN_IMAGES, None)]
    (folder / TRAIN_IMAGES).unlink()
    part.write_bytes(ARCHIVES[TRAIN_IMAGES][:50])
    mirrors[0].ignore_range = True  # a server without Range support: the whole file replaces the part
    dl.download_mnist()
    check_clean(folder)


def test_404_on_first_mirror_moves_on(mirrors):
    mirrors[0].files.clear()
    dl.download_mnist()
    check_clean(cache())
    assert mirrors[0].requests == [(name, None) for name in ARCHIVES]  # one try each: a 404 is not retried
    assert mirrors[1].requests == [(name, None) for name in ARCHIVES]


def test_closed_port_is_the_offline_error(mirrors, monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KIT_MNIST_MIRRORS", f"http://127.0.0.1:{port}/mnist")
    with pytest.raises(KitError, match=rf"could not download {TRAIN_IMAGES}: no mirror answered \(offline\?\): "
                                       rf"http://127.0.0.1:{port}/mnist/{TRAIN_IMAGES}: .*refused.*KIT_MNIST_MIRRORS"):
        load_dataset("mnist", download=True)
    assert list(cache().iterdir()) == []


def test_progress_bar_on_stderr_only_when_asked(mirrors, capsys):
    dl.download_mnist(cache() / "quiet", progress=False)
    assert capsys.readouterr().err == ""
    dl.download_mnist(cache() / "shown", progress=True)
    err = capsys.readouterr().err
    assert TRAIN_IMAGES in err and "B/s" in err


def test_cli_download_and_its_errors(mirrors, tmp_path, capsys):
    import argparse

    from frameworks.__main__ import main
    from frameworks._cli_train import add_config_arguments, add_progress_argument, dataset_from

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    add_progress_argument(parser)
    folder = tmp_path / "mine"
    check_loaded(dataset_from(parser.parse_args(["--dataset", "mnist", "--download", "--data-dir", str(folder),
                                                 "--no-progress"])))
    check_clean(folder)
    assert capsys.readouterr().err == ""
    for argv, message in ((["--dataset", "circles", "--download"], "--download is for --dataset mnist only"),
                          (["--dataset", "mnist", "--download", "--data-dir", "x.mat"], "x.mat is a .mat file")):
        assert main(["train", "torch/nn", *argv, "--no-progress", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_bad_input(mirrors, monkeypatch):
    with pytest.raises(KitError, match="download=True is for 'mnist' only"):
        load_dataset("circles", download=True)
    with pytest.raises(KitError, match="attempts must be a positive integer"):
        dl.download_mnist(attempts=0)
    monkeypatch.setenv("KIT_MNIST_MIRRORS", "ftp://example.invalid/mnist/")
    with pytest.raises(KitError, match="KIT_MNIST_MIRRORS: 'ftp://example.invalid/mnist/' is not an http"):
        dl.download_mnist()


def test_default_cache_and_mirrors(monkeypatch):
    import platformdirs

    monkeypatch.delenv("KIT_DATA", raising=False)
    monkeypatch.delenv("KIT_MNIST_MIRRORS", raising=False)
    assert dl.mnist_dir() == Path(platformdirs.user_cache_dir("rdfia-mlp-kit")) / "mnist"
    assert dl.mirrors() == ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
    assert dl.CHECKSUMS["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"  # torchvision's
