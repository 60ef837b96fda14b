from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pixseek.cli.main import main, split_negative_terms


def pixseek(capsys, *args: str) -> str:  # type: ignore[no-untyped-def]
    code = main([str(a) for a in args])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pixseek.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture()
def indexed(tmp_path, photo_folder, tiny_model, capsys):  # type: ignore[no-untyped-def]
    collection = tmp_path / "col"
    out = pixseek(
        capsys,
        "index",
        photo_folder,
        "--collection",
        collection,
        "--model",
        tiny_model,
        "--runtime",
        "torch",
        "--label-from-folder",
        "--quiet",
    )
    assert "indexed 6 images" in out
    return collection


def test_index_search_similar_info_export(indexed, photo_folder, tmp_path, capsys) -> None:
    hits = json.loads(
        pixseek(capsys, "search", "a red photo", "--collection", indexed, "-k", "4", "--json")
    )
    assert len(hits) == 4
    assert set(hits[0]) == {
        "width",
        "height",
        "id",
        "kind",
        "image_id",
        "path",
        "score",
        "box",
        "label",
        "source",
        "confidence",
        "metadata",
    }
    warm = json.loads(
        pixseek(capsys, "search", "x", "--collection", indexed, "--where", "label=warm", "--json")
    )
    assert len(warm) == 2 and {h["label"] for h in warm} == {"warm"}
    first = hits[0]["id"]
    same = json.loads(pixseek(capsys, "similar", "--id", first, "--collection", indexed, "--json"))
    assert same[0]["id"] == first and same[0]["score"] >= 0.999
    red = photo_folder / "warm" / "red.jpg"
    by_file = json.loads(pixseek(capsys, "similar", red, "--collection", indexed, "--json"))
    assert by_file[0]["path"] == str(red.resolve())
    boxed = json.loads(
        pixseek(
            capsys,
            "similar",
            red,
            "--box",
            "0,0,20,20",
            "--collection",
            indexed,
            "--json",
            "--images",
            "-k",
            "2",
        )
    )
    assert len(boxed) == 2
    assert "images:     6" in pixseek(capsys, "info", "--collection", indexed)
    info = json.loads(pixseek(capsys, "info", "--collection", indexed, "--json"))
    assert info["images"] == 6 and info["dim"] == 16
    out = tmp_path / "export.parquet"
    pixseek(capsys, "export", out, "--collection", indexed)
    table = pq.read_table(out)
    assert table.num_rows == 6 and table.schema.field("vector").type.list_size == 16
    table_text = pixseek(capsys, "search", "red", "--collection", indexed, "-k", "2")
    assert table_text.count("\n") == 2 and "image" in table_text


def test_match_takes_a_folder_and_a_bad_file_costs_only_its_answer(
    indexed, photo_folder, tmp_path, capsys
) -> None:
    """``pixseek match FOLDER``: every image in it is matched (here each is in the
    collection: an exact copy); a broken or missing file is reported on stderr and in the
    JSON, the others are still answered, and the exit status says something failed."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    gone = tmp_path / "gone.png"
    args = ["match", photo_folder, broken, gone, "--collection", indexed, "--quiet"]
    assert main([str(a) for a in [*args, "--json"]]) == 1
    captured = capsys.readouterr()
    answers = json.loads(captured.out)
    images = sorted(photo_folder.rglob("*.*"))
    assert [a["file"] for a in answers] == [str(p) for p in [*images, broken, gone]]
    for answer in answers[:-2]:
        assert answer["matches"][0]["tier"] == "exact"
        assert answer["matches"][0]["record"]["path"] == answer["file"]
    assert "recognised image format" in answers[-2]["error"]
    assert "No such file" in answers[-1]["error"]
    assert f"cannot match {broken}" in captured.err and f"cannot match {gone}" in captured.err
    assert "keeps no turned and corner views" not in captured.err  # none was needed

    assert main([str(a) for a in args]) == 1
    out = capsys.readouterr().out
    assert out.count(": 1 match\n") == len(images) and "exact 1.000" in out
    (tmp_path / "empty").mkdir()
    assert main(["match", str(tmp_path / "empty"), "--collection", str(indexed)]) == 2
    assert "no image files in the folder" in capsys.readouterr().err


def test_negative_terms_on_the_command_line(indexed, capsys) -> None:
    from pixseek.collection import open_collection
    from pixseek.core.query import SearchOptions, parse_term
    from pixseek.search import search

    terms = ["+red", "-green", "-0.5*blue"]
    hits = json.loads(pixseek(capsys, "search", *terms, "--collection", indexed, "--json"))
    plain = json.loads(pixseek(capsys, "search", "red", "--collection", indexed, "--json"))
    # the same ranking and scores as the library's for those weighted terms, not the plain query's
    library = search(open_collection(indexed), [parse_term(t) for t in terms], SearchOptions(k=10))
    assert [(h["id"], round(h["score"], 4)) for h in hits] == [
        (h.id, round(h.score, 4)) for h in library
    ]
    assert [h["score"] for h in hits] != [h["score"] for h in plain]
    assert split_negative_terms(["search", "dog", "-grass", "-k", "3", "--where", "label!=x"]) == (
        ["search", "dog", "-k", "3", "--where", "label!=x"],
        ["-grass"],
    )


def test_embed_prints_a_vector(tiny_model, photo_folder, capsys) -> None:
    text = json.loads(
        pixseek(
            capsys,
            "embed",
            "--model",
            tiny_model,
            "--runtime",
            "torch",
            "--text",
            "a dog",
            "--json",
        )
    )
    assert len(text["vector"]) == 16
    image = json.loads(
        pixseek(
            capsys,
            "embed",
            "--model",
            tiny_model,
            "--runtime",
            "torch",
            "--image",
            photo_folder / "warm" / "red.jpg",
            "--box",
            "1,1,10,10",
        )
    )
    assert abs(sum(v * v for v in image["vector"]) - 1) < 1e-4


def test_remove(indexed, capsys) -> None:
    hits = json.loads(pixseek(capsys, "search", "red", "--collection", indexed, "--json"))
    assert "removed 1 images" in pixseek(capsys, "remove", hits[0]["id"], "--collection", indexed)
    assert "images:     5" in pixseek(capsys, "info", "--collection", indexed)
    # an id that is not there: said, and the exit status says so too (it was 0)
    assert main(["remove", hits[0]["id"], "nope", "--collection", str(indexed)]) == 1
    assert "removed 0 images and their objects (2 ids were not images" in capsys.readouterr().out


def test_label_errors_of_a_folder_labelled_collection(indexed, capsys) -> None:
    """With no labelled boxes, the images' folder labels are checked (it said "no labelled
    objects to check: index ... folder labels (--label-from-folder)", which it was)."""
    report = json.loads(pixseek(capsys, "label-errors", "--collection", indexed, "--json"))
    assert report["kind"] == "image" and report["checked"] == 6


def test_models_evaluate_with_nothing_to_measure_says_so(indexed, capsys) -> None:
    """No judgements and no --labels: it ranked the indexes with every score "-"."""
    assert main(["models", "--evaluate", "--collection", str(indexed)]) == 2
    assert "nothing to measure" in capsys.readouterr().err
    assert "text→image" in pixseek(
        capsys, "models", "--evaluate", "--collection", indexed, "--labels"
    )


def test_one_record_marked_both_ways_is_refused(indexed, capsys) -> None:
    """``--more-like X --less-like X`` was searched and stored as two judgements."""
    hit = json.loads(pixseek(capsys, "search", "red", "--collection", indexed, "--json"))[0]
    marks = ["--more-like", hit["id"], "--less-like", hit["id"], "--remember"]
    assert main(["search", "red", "--collection", str(indexed), *marks]) == 2
    assert "marked both more like and less like" in capsys.readouterr().err
    out = pixseek(capsys, "feedback", "export", "--collection", indexed)
    assert hit["id"] not in out


def test_map_and_min_score_refuse_what_they_cannot_mean(indexed, tmp_path, capsys) -> None:
    """``map out.txt`` wrote a PNG named .txt; ``--min-score 2`` (no cosine reaches it)
    was run."""
    assert main(["map", str(tmp_path / "m.txt"), "--collection", str(indexed)]) == 2
    assert "name it .png" in capsys.readouterr().err
    assert not (tmp_path / "m.txt").exists()
    assert main(["search", "x", "--min-score", "2", "--collection", str(indexed)]) == 2
    assert "min_score is a cosine in [-1, 1]" in capsys.readouterr().err


def test_results_survive_a_new_process(indexed, capsys) -> None:
    here = json.loads(pixseek(capsys, "search", "blue", "--collection", indexed, "--json"))
    result = run_process("search", "blue", "--collection", indexed, "--json")
    assert result.returncode == 0, result.stderr
    there = json.loads(result.stdout)
    assert [h["id"] for h in there] == [h["id"] for h in here]
    assert [h["score"] for h in there] == pytest.approx([h["score"] for h in here], abs=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["similar", "--id", "nope"], "no record with id 'nope'"),
        (["similar", "--id", "IMAGE", "--box", "9000,0,10,10"], "outside"),
        (["similar", "--id", "IMAGE", "--box", "1,2,3"], "four numbers"),
        (["search", "   "], "empty"),
        (["search", "x", "--where", "colour=red"], "filterable fields"),
        (["search", "x", "--model", "openai/clip-vit-base-patch32"], "--model /path/to/dir"),
    ],
)
def test_errors_are_messages(indexed, capsys, args, message) -> None:
    image_id = json.loads(pixseek(capsys, "search", "red", "--collection", indexed, "--json"))[0]
    args = [image_id["id"] if a == "IMAGE" else a for a in args]
    assert main([*args, "--collection", str(indexed)]) == 2
    assert message in capsys.readouterr().err


def test_a_failing_process_prints_no_traceback(indexed) -> None:
    result = run_process("similar", "--id", "nope", "--collection", indexed)
    assert result.returncode == 2
    assert result.stderr.startswith("pixseek: error: no record with id 'nope'")
    assert "Traceback" not in result.stderr


def test_missing_collection_and_wrong_model(tmp_path, indexed, capsys) -> None:
    missing = run_process("info", "--collection", tmp_path / "nothing")
    assert missing.returncode == 2 and "no pixseek collection" in missing.stderr
    from pixseek.demo.factory import ClipShape, build_clip

    other = build_clip(tmp_path / "other", ClipShape(projection_dim=8))
    wrong = run_process("search", "x", "--collection", indexed, "--model", other)
    assert wrong.returncode == 2 and "not comparable" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_failed_files_show_in_the_summary_and_info(tmp_path, photo_folder, tiny_model) -> None:
    (photo_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    col = tmp_path / "c2"
    result = run_process(
        "index", photo_folder, "--collection", col, "--model", tiny_model, "--runtime", "torch"
    )
    assert result.returncode == 0, result.stderr
    assert "1 failed" in result.stdout and "broken.png" in result.stdout
    assert "failures:   1" in run_process("info", "--collection", col).stdout
    assert Path(col / "pixseek.json").is_file()


def search_ids(capsys, collection: Path, where: str) -> set[str]:  # type: ignore[no-untyped-def]
    hits = json.loads(
        pixseek(
            capsys,
            "search",
            "x",
            "--collection",
            collection,
            "-k",
            "20",
            "--where",
            where,
            "--json",
        )
    )
    return {hit["id"] for hit in hits}


def test_where_takes_or_in_and_parentheses(indexed, capsys) -> None:
    warm = search_ids(capsys, indexed, "label=warm")
    cool = search_ids(capsys, indexed, "label=cool")
    assert len(warm) == 2 and len(cool) == 4
    assert search_ids(capsys, indexed, "label=warm or label=cool") == warm | cool
    assert search_ids(capsys, indexed, "label in (warm, cool)") == warm | cool
    assert search_ids(capsys, indexed, "label not in (cool)") == warm
    assert search_ids(capsys, indexed, "label=warm,cool") == warm | cool
    one = sorted(cool)[0]
    assert search_ids(capsys, indexed, f"label=warm or label=cool and id={one}") == warm | {one}
    assert search_ids(capsys, indexed, f"(label=warm or label=cool) and id={one}") == {one}
    assert search_ids(capsys, indexed, "kind=object or label=nothing") == set()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("label=warm and", "nothing after 'and'"),
        ("label=warm or", "nothing after 'or'"),
        ("or label=warm", "'or' needs a condition before it"),
        ("label<warm", "unknown operator '<'"),
        ("label ~ warm", "unknown operator '~'"),
        ("colour=red or label=warm", "filterable fields: kind, label"),
        ("label=", "a value of 'label' is missing"),
        ("label=warm,", "a value of 'label' is missing"),
        ("label in ()", "a value of 'label' is missing"),
        ("label in warm", "with parentheses"),
        ("(label=warm or label=cool", "without its ')'"),
        ("label=warm split=val", "join them with 'and' or 'or'"),
    ],
)
def test_where_refuses_what_it_cannot_read(indexed, capsys, where, message) -> None:
    code = main(["search", "x", "--collection", str(indexed), "--where", where])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("pixseek: invalid input: cannot parse filter")
    assert message in captured.err
    if "filterable fields" not in message:
        assert "FIELD in (VALUE, ...)" in captured.err  # says what is accepted


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("pixseek")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pixseek.cli"]


def test_a_reader_that_closes_early_gets_no_traceback(indexed) -> None:
    """``pixseek search ... | head``: the pipe closes before the results are written."""
    process = subprocess.Popen(
        [*console_script(), "search", "red", "--collection", str(indexed), "-k", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=300) == 1
    assert errors == "", errors


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".CSV"])
def test_export_writes_the_format_its_extension_names(indexed, tmp_path, capsys, suffix) -> None:
    import csv
    import dataclasses

    import numpy as np

    from pixseek.collection import open_collection

    store = open_collection(indexed).index().store
    records, vectors = next(iter(store.scan(with_vectors=True)))
    assert vectors is not None
    marked = dataclasses.replace(
        records[0], metadata={"split": "val", "outcome": "FN", "tags": ["a", "b"], "n": 3}
    )
    store.upsert([marked], vectors[:1])
    out = tmp_path / f"records{suffix}"
    assert f"wrote 6 records to {out}" in pixseek(capsys, "export", out, "--collection", indexed)
    if suffix == ".parquet":
        rows = pq.read_table(out).to_pylist()
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    else:
        assert out.read_bytes()[:4] != b"PAR1"
        with out.open(newline="") as file:
            rows = list(csv.DictReader(file))
    assert len(rows) == 6
    row = next(r for r in rows if r["id"] == marked.id)
    expected = {"split": "val", "outcome": "FN", "label": marked.label, "path": marked.path}
    assert {name: row[name] for name in expected} == expected
    assert {"content_hash", "source_hash", "kind", "image_id", "box", "metadata"} <= set(row)
    tags, metadata, vector = row["tags"], row["metadata"], row["vector"]
    if suffix != ".jsonl":  # Parquet and CSV keep metadata as JSON text
        metadata = json.loads(metadata)
    if suffix in {".csv", ".CSV"}:  # lists are JSON text in their cells
        tags, vector = json.loads(tags), json.loads(vector)
    assert tags == ["a", "b"] and metadata["n"] == 3
    assert np.array_equal(np.asarray(vector, dtype=np.float32), vectors[0])


def test_export_refuses_an_extension_it_cannot_write(indexed, tmp_path, capsys) -> None:
    out = tmp_path / "records.txt"
    assert main(["export", str(out), "--collection", str(indexed)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the export format from 'records.txt'" in err
    assert ".parquet, .csv, .jsonl" in err
    assert not list(tmp_path.glob("records*"))


@pytest.mark.parametrize(
    "command",
    [
        ["optimize"],
        ["index", "PHOTOS", "--quiet"],
    ],
)
def test_a_second_writer_says_it_waits(indexed, photo_folder, command) -> None:
    import queue
    import threading

    from pixseek.collection import open_collection

    argv = [str(photo_folder) if a == "PHOTOS" else a for a in command]
    holder = open_collection(indexed)
    lines: queue.Queue[str] = queue.Queue()
    with holder.writing():
        process = subprocess.Popen(
            [*console_script(), *argv, "--collection", str(indexed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        stderr = process.stderr
        assert stderr is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stderr])
        reader.start()
        try:
            first = lines.get(timeout=240)
        except queue.Empty:
            process.kill()
            raise AssertionError("the second writer said nothing while it waited") from None
        assert "waiting for another writer" in first and str(indexed) in first
        assert process.poll() is None  # it still waits while the lock is held
    assert process.wait(timeout=300) == 0
    reader.join()
    assert process.stdout is not None
    assert "waiting" not in "".join(lines.queue)  # said once, before waiting
    done = process.stdout.read()
    assert ("optimized" if command[0] == "optimize" else "indexed ") in done


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--device", "bogus"], "unknown device 'bogus'"),
        (["search", "x", "--device", "cuda"], "device 'cuda' is not available"),
        (["search", "x", "--device", "cuda", "--runtime", "onnx"], "not available to the ONNX"),
        (["duplicates", "--phash-distance", "-1"], "phash_distance is a number of bits"),
    ],
)
def test_a_device_or_radius_it_cannot_use_is_refused(indexed, capsys, args, message) -> None:
    """A device this machine lacks was a traceback from inside torch (index, embed) or
    silently ignored (search on the ONNX runtime); a negative radius silently turned the
    hash tier off."""
    assert main([*args, "--collection", str(indexed)]) == 2
    assert message in capsys.readouterr().err


def test_embed_refuses_a_box_for_a_text_and_bad_counts(tiny_model, capsys) -> None:
    """``--box`` with ``--text`` was ignored (the text's vector came back); a batch size of
    0 and -3 decode threads were run anyway."""
    base = ["embed", "--model", str(tiny_model), "--runtime", "torch", "--text", "a"]
    assert main([*base, "--box", "1,1,4,4"]) == 2
    assert "--box crops an --image" in capsys.readouterr().err
    assert main([*base, "--device", "bogus"]) == 2
    for flags in (["--batch-size", "0"], ["--workers", "-3"]):
        with pytest.raises(SystemExit):
            main(["index", "x", "--collection", "c", *flags])
        assert "must be at least 1" in capsys.readouterr().err


def test_a_clipped_box_is_said_for_a_file_too(indexed, photo_folder, tiny_model, capsys) -> None:
    """Only ``similar --id ID --box`` said so; ``similar FILE --box`` and ``embed --image
    --box`` clipped the box silently."""
    photo = photo_folder / "warm" / "red.jpg"
    assert main(["similar", str(photo), "--box=8,8,900,900", "--collection", str(indexed)]) == 0
    assert "the box was clipped to the image: 8,8," in capsys.readouterr().err
    embed = ["embed", "--model", tiny_model, "--runtime", "torch", "--image", photo]
    assert main([str(a) for a in [*embed, "--box=8,8,900,900"]]) == 0
    assert "the box was clipped to the image" in capsys.readouterr().err


def test_duplicates_says_where_each_setting_came_from(indexed, capsys) -> None:
    """A given radius read "(calibrated)", and a given threshold made the calibrated radius
    read "(given)"."""
    out = pixseek(capsys, "duplicates", "--collection", indexed, "--phash-distance", "10")
    assert "(calibrated), perceptual hash within 10 bits (given)" in out
    out = pixseek(capsys, "duplicates", "--collection", indexed, "--threshold", "0.99")
    assert "0.9900 (given), perceptual hash within" in out and "bits (calibrated)" in out
    report = json.loads(
        pixseek(capsys, "duplicates", "--collection", indexed, "--phash-distance", "10", "--json")
    )
    assert report["calibrated"] and not report["phash_calibrated"]


def test_classify_answers_every_file_it_can_read(indexed, photo_folder, tmp_path, capsys) -> None:
    """The first unreadable file stopped the whole command, and a collection without labels
    answered "None (0.00)"."""
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    good = photo_folder / "warm" / "red.jpg"
    assert main(["classify", str(bad), str(good), "--collection", str(indexed)]) == 1
    captured = capsys.readouterr()
    assert f"cannot classify {bad}: not a recognised image format" in captured.err
    assert f"{good}: warm" in captured.out
    unlabelled = tmp_path / "unlabelled"
    source = json.loads(pixseek(capsys, "info", "--collection", indexed, "--json"))["model"]
    model = ["--model", source, "--runtime", "torch", "--quiet"]
    pixseek(capsys, "index", photo_folder, "--collection", unlabelled, *model)
    assert main(["classify", str(good), "--collection", str(unlabelled)]) == 2
    assert "no image that may vote has a label" in capsys.readouterr().err


def test_training_leaves_the_held_out_images_out(
    tmp_path, photo_folder, tiny_model, capsys
) -> None:
    """`--holdout` puts images in split=test: `train --labels` trained on them too (all 41
    of 41 images in one report), so a comparison on the labels scored a model on its own
    training set."""
    from pixseek.collection import open_collection
    from pixseek.core.filters import Filter
    from pixseek.training import pairs_from_labels
    from pixseek.training.data import part_of

    target = tmp_path / "held"
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    index = ["index", str(photo_folder), "--collection", str(target), "--label-from-folder"]
    pixseek(capsys, *index, "--holdout", "0.5", *model)
    collection = open_collection(target)
    test = {r.id for r in collection.records(Filter.where({"kind": "image", "split": "test"}))}
    assert 0 < len(test) < 6
    pairs = pairs_from_labels(collection)
    trained_on = part_of(collection, pairs, held_out=False)
    measured_on = part_of(collection, pairs, held_out=True)
    assert {p.image_id for p in measured_on} == test
    assert not test & {p.image_id for p in trained_on} and len(trained_on) == 6 - len(test)
    out = pixseek(
        capsys,
        "train",
        "--collection",
        target,
        "--out",
        tmp_path / "m",
        "--labels",
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--quiet",
    )
    assert f"; {6 - len(test)} training pairs, 0 held out)" in out
