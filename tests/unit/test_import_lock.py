"""The embedded store's import lock: one run at a time across processes (``flock``), and no
``<database>.import-lock`` file left beside the database once it is released."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cmdb_graph.model import SupportGroup
from cmdb_graph.store.memory import MemoryStore


def test_the_lock_file_is_removed_when_released(tmp_path: Path) -> None:
    # Arrange
    db = tmp_path / "estate.db"
    store = MemoryStore(database_path=db)
    lock_file = tmp_path / "estate.db.import-lock"

    # Act / Assert: there while held, gone after, also after a failing run
    with store.import_lock():
        assert lock_file.exists()
        store.upsert_nodes([SupportGroup(group_id="g", name="G")])
    assert not lock_file.exists()
    try:
        with store.import_lock():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert not lock_file.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if "lock" in p.name) == []
    store.close()


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    # Arrange: two store objects on one database (each its own open file, as two processes)
    db = tmp_path / "estate.db"
    first, second = MemoryStore(database_path=db), MemoryStore(database_path=db)
    got = threading.Event()

    def take() -> None:
        with second.import_lock():
            got.set()

    # Act
    with first.import_lock():
        waiter = threading.Thread(target=take)
        waiter.start()
        time.sleep(0.3)
        waited = not got.is_set()
    waiter.join(5)

    # Assert
    assert waited and got.is_set()
    assert not (tmp_path / "estate.db.import-lock").exists()
    first.close()
    second.close()


def test_never_two_holders_while_the_file_comes_and_goes(tmp_path: Path) -> None:
    # Arrange: four holders on one database, each taking the lock again and again
    db = tmp_path / "estate.db"
    stores = [MemoryStore(database_path=db) for _ in range(4)]
    inside = 0
    most = 0
    count = threading.Lock()

    def work(store: MemoryStore) -> None:
        nonlocal inside, most
        for _ in range(25):
            with store.import_lock():
                with count:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with count:
                    inside -= 1

    # Act
    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    # Assert
    assert most == 1
    assert not (tmp_path / "estate.db.import-lock").exists()
    for s in stores:
        s.close()
