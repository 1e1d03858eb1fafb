"""The corpus listing's column checks: duplicates found by sorting, across chunk boundaries, in any order."""
import pyarrow as pa
import pytest

from manifests import listing


@pytest.mark.parametrize("values,dup", [
    (["a", "b", "c", "d", "e"], None),                   # ascending: one pass, no sort
    (["e", "d", "c", "b", "a"], None),                   # any other order: sorted once
    (["c", "a", "e", "b", "a"], "a"),                    # the pair far apart in the listing
    (["a", "b", "c", "c", "d"], "c"),                    # neighbours in an ascending listing
    (["b", "b"], "b"),
    (["x"], None),
    ([], None),
])
@pytest.mark.parametrize("chunk", [2, 3, listing.CHUNK])
def test_duplicates_finds_any_repeat_whatever_the_order_and_chunking(monkeypatch, values, dup, chunk):
    monkeypatch.setattr(listing, "CHUNK", chunk)  # the pair straddles a chunk boundary at 2 and 3
    assert listing.duplicates(pa.array(values, pa.string())) == dup
    halves = pa.chunked_array([values[:2], values[2:]], pa.string())  # a listing still in pieces
    assert listing.duplicates(halves) == dup


def test_a_listing_is_one_contiguous_table_with_narrow_dictionaries(monkeypatch):
    monkeypatch.setattr(listing, "ROWS", 3)  # several chunks, each encoded on its own as it is made, then joined
    rows = ({"utt_id": f"u{i}", "path": f"/c/u{i}.wav", "label": "bonafide" if i % 2 else "spoof",
             "attack": "-" if i % 2 else f"A{i % 3}", "speaker": f"s{i % 4}", "language": "cs", "split": "train",
             "file_size": 10, "file_mtime_ns": 1} for i in range(10))
    table = listing.table_from_rows(rows)
    assert table.num_rows == 10 and all(table[c].num_chunks == 1 for c in table.column_names)  # take() stays cheap
    assert table["attack"].to_pylist() == ["A0", "-", "A2", "-", "A1", "-", "A0", "-", "A2", "-"]
    assert table["label"].to_pylist()[:2] == ["spoof", "bonafide"]
    assert table["speaker"].to_pylist()[:5] == ["s0", "s1", "s2", "s3", "s0"]
    for name in listing.DICTIONARY:
        assert table[name].type.index_type == pa.int8()  # a few distinct values: one byte a row
    assert listing.ascending(table["utt_id"])
    assert not listing.ascending(pa.chunked_array([["a", "c"], ["b"], ["d", "e"]]))  # down at a chunk boundary


def test_the_driver_commands_allocate_from_the_system_unless_told_otherwise(monkeypatch):
    before = pa.default_memory_pool()
    bundled = pa.mimalloc_memory_pool()  # Arrow's default where it is built in
    try:
        pa.set_memory_pool(bundled)
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        listing.driver_allocator()
        assert pa.default_memory_pool().backend_name == "system"
        pa.set_memory_pool(bundled)
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")  # the user's choice stands
        listing.driver_allocator()
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)


@pytest.mark.parametrize("chunks", [
    [["a", "bb"], ["ccc"], []],                              # an empty chunk between or at the end
    [[], ["x"]],
    [["é", "日本"], ["", ""], ["z" * 300]],                    # multibyte text, empty strings
    [["u1", None], ["u3"]],                                   # nulls (the problem column): joined by Arrow
])
def test_joined_string_columns_keep_every_value_in_order(chunks):
    arrays = [pa.array(c, pa.string()) for c in chunks]
    arrays[0] = pa.concat_arrays([pa.array(["dropped"], pa.string()), arrays[0]]).slice(1)  # a chunk that is a slice
    want = [v for c in chunks for v in c]
    got = listing._joined(list(arrays))
    got.validate(full=True)
    assert got.to_pylist() == want and got.type == pa.string()
