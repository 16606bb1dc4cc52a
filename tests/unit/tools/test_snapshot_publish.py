"""``dqhash snapshot publish`` refuses an export whose columns do not match what it is told to hash and key by,
in one message naming each, before anything is written."""

import asyncio
import io

import pytest

from dqhash.core.hashing import RowHasher
from dqhash.settings import load
from dqhash.tools.snapshot import publish as publish_module
from dqhash.tools.snapshot.publish import ColumnsError, open_rows, publish


class NothingMayBePublished:
    def __init__(self, *args, **kwargs):
        raise AssertionError("a side publisher was started: something would have been written")


def run(export: bytes, fmt: str, fields, key_columns, types=None):
    return asyncio.run(
        publish(
            load({}),
            None,
            io.BytesIO(export),
            fmt,
            "s1",
            RowHasher("v2", fields, types),
            key_columns,
            key_columns,
            dict(types or {}),
            16,
            None,
            0,
        )
    )


@pytest.fixture(autouse=True)
def no_publisher(monkeypatch):
    monkeypatch.setattr(publish_module, "SidePublisher", NothingMayBePublished)


def test_a_csv_missing_a_hashed_column_is_refused_naming_it_and_the_nearest_name():
    export = b"id,amount,name\n1,2.50,Ada\n2,3,Bob\n"
    with pytest.raises(ColumnsError) as refused:
        run(export, "csv", ["id", "amout", "name"], ["id"], {"amount": "decimal"})
    message = str(refused.value)
    assert "--fields names 'amout', which the CSV header does not have (did you mean 'amount'?)" in message
    assert "Columns in the CSV header: id, amount, name" in message


def test_a_csv_without_its_key_column_is_one_error_not_one_per_row():
    export = b"name,amount\n" + b"".join(b"n%d,1\n" % i for i in range(1000))
    with pytest.raises(ColumnsError, match="--key-columns names 'id'"):
        run(export, "csv", None, ["id"])


def test_json_rows_are_checked_against_the_columns_of_the_first_rows_and_all_rows_still_come_through():
    export = b'{"id": 1, "name": "a"}\n{"id": 2}\n{"id": 3, "name": "c", "late": 1}\n'
    with pytest.raises(ColumnsError, match="--types names 'nmae'.*did you mean 'name'"):
        run(export, "jsonl", None, ["id"], {"nmae": "text"})
    columns, where, rows = open_rows(io.BytesIO(export), "jsonl")
    assert columns == ["id", "name", "late"] and where == "the first 3 JSON rows"
    assert [number for number, _, _ in rows] == [1, 2, 3]
