"""Ray is optional and its addresses are user input: one clear line for every way it cannot be used, no hang,
and no ``import ray`` anywhere else in moodlens."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from ray_nodes import free_port
from recognition_media import photo_archive

from moodlens.distributed.cluster import AUTO, LOCAL, ClusterError, host_port, parse_address


@pytest.mark.parametrize(("given", "canonical"), [
    (None, LOCAL), ("", LOCAL), (" Local ", LOCAL), ("auto", AUTO), ("AUTO", AUTO),
    ("10.0.0.5:6379", "10.0.0.5:6379"), ("head.example:6379", "head.example:6379"),
    ("ray://head.example:10001", "ray://head.example:10001"), ("RAY://10.0.0.5:10001", "ray://10.0.0.5:10001"),
    ("[::1]:6379", "[::1]:6379"),
])
def test_addresses_are_read_once_into_one_form(given, canonical):
    assert parse_address(given) == canonical


@pytest.mark.parametrize("bad", ["photos/", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "http://head:6379",
                                 "ray://", "head:6379; rm -rf /", "head:port"])
def test_malformed_addresses_say_what_is_expected(bad):
    with pytest.raises(ClusterError, match="is not a Ray address: use local, auto, HOST:PORT or ray://HOST:PORT"):
        parse_address(bad)


def test_host_port():
    assert host_port("ray://head:10001") == ("head", 10001) and host_port("[::1]:6379") == ("::1", 6379)
    assert host_port(LOCAL) is None and host_port(AUTO) is None


def _cli(*args: str, block: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``moodlens ...`` in a fresh interpreter; ``block``: a top-level module that cannot be imported there."""
    code = "import sys\n"
    if block:
        code += ("class Block:\n"
                 "    def find_spec(self, name, path=None, target=None):\n"
                 f"        if name.split('.')[0] == {block!r}:\n"
                 "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
                 "sys.meta_path.insert(0, Block())\n")
    code += "from moodlens.cli import app\napp()\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
    return proc.stderr


def test_ray_without_the_extra_says_how_to_install_it(tmp_path):
    photos = photo_archive(tmp_path / "photos", sizes=(320,))
    err = _one_error_line(_cli("analyze", str(photos), "--ray", LOCAL, "--csv", str(tmp_path / "f.csv"), block="ray"))
    assert "error: Ray is not installed: pip install 'moodlens[ray]'" in err
    assert not (tmp_path / "f.csv").exists()  # checked before anything is written


def test_only_the_cluster_module_imports_ray():
    """Everything else gets Ray through ``cluster.import_ray`` (a clear error without the extra)."""
    import re
    from pathlib import Path

    import moodlens

    package = Path(moodlens.__file__).parent
    importers = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                       if re.search(r"^\s*(import ray\b|from ray\b)", p.read_text(), re.MULTILINE))
    assert importers == ["distributed/cluster.py"]


def test_runtime_and_cli_do_not_import_ray():
    code = ("import sys, moodlens.cli, moodlens.distributed.cluster, moodlens.distributed.photos, "
            "moodlens.recognition.analyzer, moodlens.events.ingest, moodlens.web.app; print('ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_bad_or_unreachable_address_is_one_line_at_once(tmp_path):
    pytest.importorskip("ray")
    photos = photo_archive(tmp_path / "photos", sizes=(320,))
    err = _one_error_line(_cli("analyze", str(photos), "--ray", "photos/"))
    assert "error: 'photos/' is not a Ray address" in err
    port = free_port()
    t = time.perf_counter()
    err = _one_error_line(_cli("analyze", str(photos), "--ray", f"127.0.0.1:{port}"))
    assert f"error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused" in err
    assert time.perf_counter() - t < 60  # an interpreter start, not Ray's minutes of retries


def test_an_address_where_nothing_speaks_ray_times_out(tmp_path):
    """A port that accepts connections and never answers (Ray's own ray.init waits for ever there): one line,
    without the retries Ray's core prints meanwhile (its first after 5 s)."""
    pytest.importorskip("ray")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = ("from moodlens.distributed.cluster import ClusterError, ray_cluster\n"
                "try:\n"
                f"    with ray_cluster('127.0.0.1:{port}', timeout_s=7):\n"
                "        pass\n"
                "except ClusterError as exc:\n"
                "    print(exc)\n")
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - t
    assert f"no answer from a Ray cluster at 127.0.0.1:{port} within 7 s" in proc.stdout, proc.stderr
    assert proc.stderr == ""
    assert elapsed < 60


def test_photos_refuse_ray_client_addresses(tmp_path):
    """Ray Data pipelines fail inside Ray Client; say so before connecting."""
    pytest.importorskip("ray")
    from moodlens.distributed.photos import analyze_paths_on_ray

    with pytest.raises(ClusterError, match=r"do not run through Ray Client \(ray://head:10001\)"):
        analyze_paths_on_ray([tmp_path], address="ray://head:10001")
