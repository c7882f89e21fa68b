"""Huying installs as a package: a wheel built from this tree, installed into a fresh venv,
run from an empty folder that holds only a config file, migrates, checks its workflows,
loads the demo and serves.

No network: the wheel is built with the running interpreter's setuptools
(--no-build-isolation) and installed with --no-deps --no-index. The new venv sees the
dependencies already installed here through a .pth file naming this interpreter's
site-packages; a plain path in a .pth is added as it is, without running the .pth files it
holds, so this checkout's editable install (src/ on the path) stays invisible to it.
"""

from __future__ import annotations

import shutil
import signal
import site
import subprocess
import sys
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import pytest

from huying.settings import PACKAGED_WORKFLOWS, ConfigError, load_settings
from tests.conftest import PG_URL
from tests.processes import ROOT, Proc, child_env, free_port, processes, wait_until

CONFIG = """\
database:
  url: sqlite:///huying.db     # beside this file
calendar:
  holidays: none               # the test does not depend on which years chinese-calendar knows
"""


# --- where an installed Huying finds its files -----------------------------------------


def test_unset_workflows_path_means_the_shipped_workflows(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("workflows: {default: service_request}\n")
    settings = load_settings(tmp_path / "config.yaml", environ={})
    assert settings.workflows_dir == PACKAGED_WORKFLOWS
    assert (PACKAGED_WORKFLOWS / "service_request.yaml").is_file()


def test_a_relative_workflows_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.yaml").write_text("workflows: {path: flows}\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings("etc/config.yaml", environ={})
    assert settings.workflows_dir == tmp_path / "etc" / "flows"


def test_without_a_config_file_the_defaults_apply_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # holds no config.yaml
    settings = load_settings(environ={})
    assert settings.base_dir == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'huying.db'}"
    assert settings.workflows_dir == PACKAGED_WORKFLOWS


def test_a_config_file_named_but_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("nowhere.yaml", environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"HUYING_CONFIG": "nowhere.yaml"})


# --- the wheel, installed ------------------------------------------------------------


def _run(cmd: list[str], *, cwd: Path, timeout: float = 60.0) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel of this tree installed; returns its folder."""
    # setuptools builds wheels by itself from 70.1 on; before, only with the `wheel` package
    assert find_spec("setuptools.command.bdist_wheel") or find_spec("wheel"), (
        "building a wheel offline needs setuptools>=70.1, which ./dev installs: "
        "remove .venv/.installed-* and run ./dev again"
    )
    base = tmp_path_factory.mktemp("packaging")
    # Built from a copy, so that the build leaves nothing in the work tree.
    tree = base / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(tree),
        ],
        cwd=base,
    )
    (wheel,) = dist.glob("huying-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base
    ).strip()
    install = ["install", "--no-deps", "--no-index", "--no-warn-conflicts", str(wheel)]
    _run([*pip, "--python", str(python), *install], cwd=base)
    # Only now the dependencies: pip installed into a venv that held no other huying.
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "dependencies.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    # The package that runs is the installed one, not this checkout's src/.
    where = _run([str(python), "-c", "import huying; print(huying.__file__)"], cwd=base).strip()
    assert Path(where).is_relative_to(venv), where
    return venv


@pytest.mark.skipif(
    bool(PG_URL), reason="uses no test database: the SQLite run (./dev test) covers it"
)
def test_a_wheel_runs_from_a_folder_with_only_a_config_file(
    installed: Path, tmp_path: Path
) -> None:
    huying = str(installed / "bin" / "huying")
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")

    out = _run([huying, "migrate"], cwd=folder)
    assert f"database at head: sqlite:///{folder / 'huying.db'}" in out
    assert (folder / "huying.db").is_file()

    # with workflows.path unset, the workflows shipped in the package
    out = _run([huying, "workflows", "check"], cwd=folder)
    assert "ok: service_request v" in out
    source = out.rsplit("— ", 1)[1].strip()
    assert Path(source).is_relative_to(installed), out

    out = _run([huying, "demo"], cwd=folder)
    assert "demo directory.yaml: " in out
    assert "demo enterprises.csv: " in out
    assert (folder / "var" / "demo-credentials.txt").is_file()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(base_url + path, timeout=2) as response:
                return int(response.status)
        except OSError:
            return 0

    with processes(tmp_path) as group:
        # `Processes.start` runs the checkout's `huying` in ROOT: this one runs the installed
        # script in the folder of the config file.
        log = (tmp_path / "serve.log").open("ab")
        popen = subprocess.Popen(
            [huying, "serve", "--port", str(port)],
            cwd=folder,
            env=child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        serve = Proc("serve", popen, tmp_path / "serve.log", log)
        group.procs.append(serve)
        wait_until(
            "/healthz to answer 200",
            lambda: not serve.alive() or status("/healthz") == 200,
            timeout=30,
            diagnose=group.logs,
        )
        assert serve.alive(), group.logs()
        assert status("/healthz") == 200
        assert status("/login") == 200  # the console's templates are shipped too
        assert status("/static/huying.css") == 200
        # uvicorn re-raises SIGTERM after a clean shutdown: the exit status is 0 or -SIGTERM
        assert group.terminate(serve) in (0, -signal.SIGTERM), group.logs()
        assert "Application shutdown complete" in group.logs()
