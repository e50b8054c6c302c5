"""Two ``sigverify serve`` processes sharing one database, each with its own data dir and FAISS cache.

What one server commits, the other sees at once: verification by ID reads only SQL, and 1:N search
first brings the server's FAISS cache up to date from SQL. On SQLite (a shared file) and, when
``SIGVERIFY_TEST_DATABASE_URL`` is set, on PostgreSQL. ``bench/load_bench.py`` measures the delay.
"""

from __future__ import annotations

from pathlib import Path

from bench.load_bench import ApiClient
from store.settings import Settings
from tests.conftest import signature_png
from tests.test_faults import operator_key, server_env
from tests.web import serving

CUSTOMERS = 4


def test_what_one_server_enrolls_the_other_verifies_and_identifies(
    tmp_path: Path, database_url: str, fake_model_file: Path
):
    (tmp_path / "var").mkdir()  # the SQLite file's folder
    settings = Settings(data_dir=tmp_path / "a", database_url=database_url, model_path=fake_model_file)
    operator, admin = operator_key(settings), operator_key(settings, "admin")
    env = server_env(settings)
    with (serving(tmp_path / "a", fake_model_file, env) as served_a,
          serving(tmp_path / "b", fake_model_file, env) as served_b,
          ApiClient(served_a.url, operator) as a, ApiClient(served_b.url, operator) as b):
        for writer in range(1, CUSTOMERS + 1):
            customer = f"two-{writer}"
            status, enrolled = a.enroll(customer, [signature_png(writer, s) for s in range(3)])
            assert status == 201, enrolled
            status, verified = b.verify(customer, signature_png(writer, 7))  # at once, no retry
            assert status == 200 and verified["best_reference_id"] in enrolled["reference_ids"], verified
            candidates = b.identify(signature_png(writer, 7), 3)[1]["candidates"]
            assert candidates[0]["customer_id"] == customer, candidates
        with ApiClient(served_b.url, admin) as b_admin:
            assert b_admin.call("DELETE", "/customers/two-1")[0] == 200
        assert a.verify("two-1", signature_png(1, 7))[0] == 404
        found = {c["customer_id"] for c in a.identify(signature_png(1, 7), 10)[1]["candidates"]}
        assert "two-1" not in found and "two-2" in found
        for api in (a, b):
            report = api.call("GET", "/health")[1]
            assert report["consistent"] and report["sql_references"] == 3 * (CUSTOMERS - 1), report
