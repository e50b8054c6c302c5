"""Shared fixtures: a saved untrained model, per-test data dirs and databases, a migrated Store.

The ``database_url`` fixture is parametrized: SQLite always; PostgreSQL too when
``SIGVERIFY_TEST_DATABASE_URL`` is set (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
each test in a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import siamese  # noqa: F401  (first: it sets TensorFlow's oneDNN default before any test imports TensorFlow)
from store.consistency import sync_index
from store.database import Store, make_engine
from store.migrate import upgrade_database
from store.settings import Settings
from tests.fake_model import FakeSignatureModel, fake_loader
from tests.synthetic import png_bytes, synthetic_signature

TEST_DATABASE_ENV = "SIGVERIFY_TEST_DATABASE_URL"
POSTGRES_URL = os.environ.get(TEST_DATABASE_ENV, "")
DATABASE_KINDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """In CI (``CI`` set) the store, enroll and verify tests must also run on PostgreSQL."""
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError(f"CI is set but {TEST_DATABASE_ENV} is not: the store tests must run on "
                                "PostgreSQL in CI")


@pytest.fixture(autouse=True)
def _no_sigverify_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no ``SIGVERIFY_*`` variable of the developer's shell (except the test database)."""
    for name in list(os.environ):
        if name.startswith("SIGVERIFY_") and name != TEST_DATABASE_ENV:
            monkeypatch.delenv(name)


def signature_png(writer: int, sample: int, forgery: bool = False) -> bytes:
    """PNG bytes of a synthetic signature."""
    return png_bytes(synthetic_signature(writer, sample, forgery=forgery))


def write_signature(folder: Path, writer: int, sample: int, forgery: bool = False) -> Path:
    """Write a synthetic signature PNG under ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"w{writer}_s{sample}{'_f' if forgery else ''}.png"
    path.write_bytes(signature_png(writer, sample, forgery))
    return path


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model (seed 0) saved as a .keras file with its LiteRT flatbuffer beside it (so the
    service embeds as it does by default), built once per session."""
    from siamese.litert import export_twin, litert_path_for
    from siamese.model import SignatureModel

    path = tmp_path_factory.mktemp("model") / "untrained.keras"
    untrained = SignatureModel.untrained(0)
    untrained.keras_model.save(path)
    export_twin(untrained.twin, litert_path_for(path))
    return path


@pytest.fixture(scope="session")
def model(model_path: Path):  # type: ignore[no-untyped-def]
    """The saved untrained model, loaded through the same cache the CLI uses."""
    from verify.runtime import load_signature_model

    return load_signature_model(Settings(model_path=model_path))


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in the test's tmp dir, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'var' / 'sigverify.db').as_posix()}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, model_path: Path) -> Settings:
    """Settings of one test: its own data dir and database; no enrollment warning blocks."""
    return Settings(data_dir=tmp_path / "var", database_url=database_url, model_path=model_path,
                    enroll_blocking_warnings="")


@pytest.fixture
def store(settings: Settings, model) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    """A migrated Store with an index synced for the untrained model."""
    upgrade_database(settings)
    opened = Store(settings)
    sync_index(opened, model.version)
    yield opened
    opened.close()


@pytest.fixture
def fake_model_file(tmp_path: Path) -> Path:
    """A stand-in model file: the fake model's version is its sha256."""
    path = tmp_path / "fake-model.keras"
    path.write_bytes(b"fake model for tests")
    return path


@pytest.fixture
def fake_settings(tmp_path: Path, database_url: str, fake_model_file: Path) -> Settings:
    """Settings for the fake model (threshold 0.5), default enrollment policy."""
    return Settings(data_dir=tmp_path / "var", database_url=database_url, model_path=fake_model_file)


@pytest.fixture
def fake_model(fake_model_file: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSignatureModel:
    """The fast fake model; ``SignatureModel.load`` returns it for the rest of the test."""
    from siamese.model import SignatureModel

    monkeypatch.setattr(SignatureModel, "load", staticmethod(fake_loader()))
    loaded = SignatureModel.load(fake_model_file)
    assert isinstance(loaded, FakeSignatureModel)
    return loaded


@pytest.fixture
def fake_store(fake_settings: Settings, fake_model: FakeSignatureModel) -> Iterator[Store]:
    """A migrated Store with an index synced for the fake model."""
    upgrade_database(fake_settings)
    opened = Store(fake_settings)
    sync_index(opened, fake_model.version)
    yield opened
    opened.close()


@pytest.fixture
def new_store() -> Iterator[Callable[[Settings], Store]]:
    """Open more Stores (another process's view) that are closed when the test ends."""
    opened: list[Store] = []

    def make(settings: Settings) -> Store:
        opened.append(Store(settings))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture
def web_settings(tmp_path: Path, fake_model_file: Path) -> Settings:
    """Settings of a web app test: SQLite in the test's data dir, the fake model, a known admin password."""
    return Settings(data_dir=tmp_path / "web", model_path=fake_model_file, admin_password=ADMIN_PASSWORD,
                    secret_key="secret-for-tests", enroll_blocking_warnings="",
                    enroll_cross_match_threshold=0.5)  # the fake model's threshold, below the 1:N floor


@pytest.fixture
def app(web_settings: Settings, fake_model: FakeSignatureModel):  # type: ignore[no-untyped-def]
    """The web app on ``web_settings`` (exceptions that no handler takes propagate to the test)."""
    from webapp import create_app

    application = create_app(web_settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["sigverify"].close()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """A Flask test client of ``app`` that fills in CSRF tokens and logs in (see tests.web)."""
    from tests.web import WebClient

    return WebClient(app.test_client())


@pytest.fixture
def runner(web_settings: Settings, fake_model: FakeSignatureModel):  # type: ignore[no-untyped-def]
    """Run ``sigverify ARGS`` in process on ``web_settings`` (fake model); returns the click Result."""
    from click.testing import CliRunner

    from webapp.cli import main

    options = ["--data-dir", str(web_settings.data_dir), "--model", str(web_settings.model_path)]

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, [*options, *args], input=input, catch_exceptions=False)

    return run
