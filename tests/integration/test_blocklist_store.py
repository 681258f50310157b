"""The blocklist in the database, on SQLite and PostgreSQL: generations round-trip encrypted,
damage and wrong keys fail closed, writers from the same generation never both save, and each
process's replica follows the newest generation within ``poll_s``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from guard.db import Database, DbTimeouts
from guard.errors import Conflict, Unavailable
from guard.faces import l2_normalise
from guard.identity import Blocklist, BlocklistSaved
from guard.identity.blocklist import encode
from guard.identity.blocklist_store import KEEP_BLOBS, BlocklistGenerationRow
from tests.support.blocklists import (
    cipher_of,
    flip_index_byte,
    forget_blocklist,
    garble_figures,
    newest_row,
    sample_blocklist,
    store_on,
    unit,
    write_legacy_folder,
)
from tests.support.guards import GuardFactory

pytestmark = pytest.mark.storage


@pytest.fixture
def hosts(database_url: str) -> Iterator[tuple[Database, Database]]:
    """Two hosts' connections to the one database."""
    first, second = Database(database_url), Database(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def test_a_saved_generation_round_trips_to_another_host(hosts: tuple[Database, Database]) -> None:
    key = cipher_of()
    blocklist, vectors = sample_blocklist()
    assert store_on(hosts[0], key).replace(blocklist, actor="cli:ops") == 1
    loaded = store_on(hosts[1], key).current()
    assert loaded.generation == 1 and [f.id for f in loaded.list_figures()] == ["alpha", "beta"]
    assert loaded.figures["alpha"].aliases == ("A1",)
    best = loaded.match([vectors[1], vectors[4]])
    assert [hits[0].figure_id for hits in best] == ["alpha", "beta"]
    assert best[0][0].similarity == pytest.approx(1.0, abs=1e-5)
    row = newest_row(hosts[1])
    assert (row.actor, row.figure_count, row.vector_count, row.engine) == ("cli:ops", 2, 5, "dlib")


def test_the_stored_index_is_encrypted(hosts: tuple[Database, Database]) -> None:
    blocklist, vectors = sample_blocklist()
    plaintext = encode(blocklist).index
    store_on(hosts[0]).replace(blocklist)
    blob = newest_row(hosts[0]).index_blob
    assert blob is not None and blob != plaintext
    one_vector = l2_normalise(vectors[3]).astype(np.float32).tobytes()  # as add_figure stores it
    assert one_vector in plaintext, "the plaintext index holds the vectors as they are"
    assert one_vector not in blob and one_vector[:16] not in blob
    assert b"Alpha One" in (newest_row(hosts[0]).figures_json or "").encode()  # not biometric


def test_a_wrong_template_key_is_unavailable(hosts: tuple[Database, Database]) -> None:
    store_on(hosts[0]).replace(sample_blocklist()[0])
    with pytest.raises(Unavailable, match="cannot be decrypted with test key"):
        store_on(hosts[1]).current()  # another key


@pytest.mark.parametrize("damage", [flip_index_byte, garble_figures])
def test_a_damaged_generation_is_unavailable(
    hosts: tuple[Database, Database], damage: object
) -> None:
    key = cipher_of()
    store = store_on(hosts[0], key)
    store.replace(sample_blocklist()[0])
    assert len(store.current()) == 2
    damage(hosts[0])  # type: ignore[operator]
    # A generation is verified when a process loads it: here another host (or a restart).
    other = store_on(hosts[1], key)
    with pytest.raises(Unavailable, match=r"decrypted|checksum"):
        other.current()
    with pytest.raises(Unavailable):  # and again: nothing half-loaded is served
        other.current()
    # A rebuild is the repair: it need not read what it replaces.
    store.replace(sample_blocklist()[0])
    assert other.current().generation == 2


def test_no_generation_is_unavailable(hosts: tuple[Database, Database]) -> None:
    store = store_on(hosts[0])
    with pytest.raises(Unavailable, match=r"holds no public-figure blocklist.*guard init"):
        store.current()
    store.replace(Blocklist.empty("dlib", 128))
    assert store.current().generation == 1
    forget_blocklist(hosts[0])
    with pytest.raises(Unavailable, match="holds no public-figure blocklist"):
        store.current()


def test_a_stale_expected_generation_is_a_conflict(hosts: tuple[Database, Database]) -> None:
    key = cipher_of()
    store = store_on(hosts[0], key)
    store.replace(sample_blocklist()[0])
    store.update(lambda b: b.remove_figure("beta"), expected=1)
    with pytest.raises(Conflict, match="at generation 2, this change was based on 1"):
        store.update(lambda b: b.remove_figure("alpha"), expected=1)
    with pytest.raises(Conflict, match="at generation 2"):
        store.replace(Blocklist.empty("dlib", 128), expected=1)
    assert store.load().generation == 2 and "alpha" in store.load().figures


def test_two_hosts_from_the_same_generation_one_wins(hosts: tuple[Database, Database]) -> None:
    """Both read generation 1 and change it at once (a barrier holds each inside its change
    until the other has read too); exactly one saves generation 2, the other is refused."""
    key = cipher_of()
    stores = [store_on(hosts[0], key), store_on(hosts[1], key)]
    stores[0].replace(Blocklist.empty("dlib", 128))
    barrier = threading.Barrier(2, timeout=30)
    vectors = unit(2)
    outcomes: list[str] = []

    def edit(host: int) -> None:
        def change(blocklist: Blocklist) -> None:
            barrier.wait()  # both have read generation 1
            blocklist.add_figure(f"host-{host}", f"Host {host}", [vectors[host]])

        try:
            stores[host].update(change, actor=f"host-{host}")
            outcomes.append("saved")
        except Conflict as exc:
            assert "another change saved blocklist generation 2 first" in exc.message
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(host,)) for host in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict", "saved"]
    newest = stores[1].load()
    assert newest.generation == 2 and len(newest) == 1


def test_the_replica_follows_within_poll_s(hosts: tuple[Database, Database]) -> None:
    key = cipher_of()
    writer, reader = store_on(hosts[0], key), store_on(hosts[1], key, poll_s=1.0)
    writer.replace(sample_blocklist()[0])
    seen = reader.current()
    assert seen.generation == 1
    writer.update(lambda b: b.remove_figure("beta"))
    assert writer.current().generation == 2, "the writing host enforces its change at once"
    assert reader.current() is seen, "within poll_s the replica is served"
    time.sleep(1.05)
    assert reader.current().generation == 2 and sorted(reader.current().figures) == ["alpha"]
    assert len(seen) == 2, "a replica is never changed in place"


def test_a_failed_poll_is_unavailable_not_the_stale_copy(
    hosts: tuple[Database, Database],
) -> None:
    store = store_on(hosts[0])
    store.replace(sample_blocklist()[0])
    assert store.current().generation == 1
    # The database goes away (a closed port: nothing listens on port 1).
    store.db = Database("postgresql://guard@127.0.0.1:1/guard", DbTimeouts(connect_s=1))
    try:
        for _ in range(2):
            with pytest.raises(Unavailable, match=r"blocklist cannot be read.*database"):
                store.current()
    finally:
        store.db.dispose()
        store.db = hosts[0]
    assert store.current().generation == 1


def test_old_generations_keep_their_row_but_lose_their_blobs(
    hosts: tuple[Database, Database],
) -> None:
    store = store_on(hosts[0])
    vectors = unit(5)
    store.replace(Blocklist.empty("dlib", 128))
    for i in range(4):
        store.update(lambda b, i=i: b.add_figure(f"f{i}", f"F {i}", [vectors[i]]))  # type: ignore[misc]
    with hosts[0].transaction() as session:
        rows = session.scalars(
            select(BlocklistGenerationRow).order_by(BlocklistGenerationRow.generation)
        ).all()
        kept = [(r.generation, r.index_blob is not None, r.figures_json is not None) for r in rows]
    assert len(kept) == 5
    assert kept == [(g, g > 5 - KEEP_BLOBS, g > 5 - KEEP_BLOBS) for g in range(1, 6)]
    assert len(store.current()) == 4


def test_legacy_files_are_imported_once(hosts: tuple[Database, Database], tmp_path: Path) -> None:
    key = cipher_of()
    folder = write_legacy_folder(tmp_path / "blocklist", sample_blocklist()[0], generation=4)
    told: list[BlocklistSaved] = []
    first = store_on(hosts[0], key, legacy_dir=folder)
    first._on_saved = told.append
    assert first.legacy_pending()
    imported = first.current()
    assert imported.generation == 4 and sorted(imported.figures) == ["alpha", "beta"]
    assert told == [
        BlocklistSaved(4, f"import:{folder}", added=("alpha", "beta"), removed=(), changed=())
    ]
    assert newest_row(hosts[0]).actor == f"import:{folder}"
    other = store_on(hosts[1], key, legacy_dir=folder)
    other._on_saved = told.append
    assert other.current().generation == 4 and len(told) == 1, "imported once"
    assert not other.legacy_pending()
    other.update(lambda b: b.remove_figure("alpha"))
    assert first.load().generation == 5


def test_damaged_legacy_files_are_unavailable(
    hosts: tuple[Database, Database], tmp_path: Path
) -> None:
    folder = write_legacy_folder(tmp_path / "blocklist", sample_blocklist()[0])
    index = next(folder.glob("index-*.faiss"))
    index.write_bytes(index.read_bytes()[:-1] + b"?")
    store = store_on(hosts[0], legacy_dir=folder)
    with pytest.raises(Unavailable, match="fail their checksum"):
        store.current()
    assert not store.exists(), "nothing was imported"


def test_guard_init_leaves_legacy_files_to_the_guard_which_imports_and_audits_them(
    make_guard: GuardFactory, tmp_path: Path
) -> None:
    from guard.bootstrap import initialise

    folder = write_legacy_folder(tmp_path / "var" / "blocklist", sample_blocklist()[0])
    guard = make_guard()  # runs `guard init` first
    report = initialise(guard.settings, guard.face_engine)
    assert report.blocklist_import_pending and not report.blocklist_created
    assert guard.blocklists.legacy_pending()
    assert sorted(guard.blocklists.current().figures) == ["alpha", "beta"]
    changes = [e for _, e in guard.audit.entries(limit=100) if e["kind"] == "blocklist_changed"]
    assert [(c["generation"], c["actor"], c["figures_added"]) for c in changes] == [
        (4, f"import:{folder}", ["alpha", "beta"])
    ]
    assert not initialise(guard.settings, guard.face_engine).blocklist_import_pending


def test_guard_init_creates_an_empty_generation_once(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert guard.blocklists.current().generation == 1 and len(guard.blocklists.current()) == 0
    assert newest_row(guard.db).actor == "init"
    from guard.bootstrap import initialise

    assert not initialise(guard.settings, guard.face_engine).blocklist_created
    assert guard.blocklists.newest_generation() == 1
