"""The HTML report and the explore page, checked by parsing what they write.

Run directories come from ``rundir_fixture.build_run_dir`` (seeded predictions, metrics
computed from them); one test runs the real benchmark when ``facebench.compare`` can.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebench.errors import UserError
from facebench.reports import plot_history, write_explore, write_report
from facebench.reports.sections import SECTIONS
from facebench.reports.tables import MISSING, format_metric
from rundir_fixture import (
    HOSTILE_FILE,
    HOSTILE_MISSING,
    HOSTILE_NAMES,
    UNICODE_FILE,
    build_run_dir,
)

# ---- a tiny DOM ----------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.classes:
                continue
            if any(n.attrs.get(k) != v for k, v in attrs.items()):
                continue
            out.append(n)
        return out

    def find(self, *args, **kwargs) -> Node:
        found = self.find_all(*args, **kwargs)
        assert found, f"no element {args} {kwargs}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html: str) -> Node:
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root


def clean(text: str) -> str:
    return " ".join(text.split())


# ---- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """5 models with a CNN, 2 trials, 2 fractions, hostile names; the report written once."""
    run_dir = build_run_dir(tmp_path_factory.mktemp("full") / "run")
    report = write_report(run_dir)
    html = report.read_text(encoding="utf-8")
    return {"dir": run_dir, "report": report, "html": html, "dom": parse(html)}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """No CNN, 1 trial, 1 fraction: the bootstrap intervals and the 'not in this run' messages."""
    run_dir = build_run_dir(
        tmp_path_factory.mktemp("small") / "run",
        models=("dummy", "hog+ridge", "hog+svm"),
        n_trials=1,
        fractions=(1.0,),
        synthetic=False,
        seed=3,
    )
    html = write_report(run_dir).read_text(encoding="utf-8")
    return {"dir": run_dir, "html": html, "dom": parse(html)}


def _section(run: dict, sid: str) -> Node:
    return run["dom"].find("section", id=sid)


# ---- structure -----------------------------------------------------------------------


def test_every_section_is_present_in_order(full_run):
    ids = [s.attrs["id"] for s in full_run["dom"].find_all("section")]
    assert ids == [sid for sid, _ in SECTIONS if sid != "seen"]
    nav = [a.attrs["href"] for a in full_run["dom"].find("nav").find_all("a")]
    assert nav == [f"#{sid}" for sid in ids]


def test_synthetic_banner_only_when_audit_says_so(full_run, small_run):
    assert _section(full_run, "answer").find_all("div", cls="banner")
    assert "Synthetic faces" in clean(_section(full_run, "answer").text())
    assert not small_run["dom"].find_all("div", cls="banner")


def test_every_embedded_image_decodes(full_run):
    imgs = full_run["dom"].find_all("img")
    assert len(imgs) > 20  # figures and thumbnails
    for img in imgs:
        src = img.attrs["src"]
        m = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        with Image.open(io.BytesIO(base64.b64decode(m.group(2)))) as im:
            im.load()
            assert im.width > 0 and im.height > 0
            assert im.format.lower() == ("png" if m.group(1) == "png" else "jpeg")


def test_no_remote_resource_and_no_script(full_run):
    html, dom = full_run["html"], full_run["dom"]
    assert "http://" not in html and "https://" not in html
    assert not dom.find_all("script") and not dom.find_all("link") and not dom.find_all("iframe")
    for node in dom.iter():
        for name in ("src", "href", "srcset", "poster", "data", "action"):
            value = node.attrs.get(name)
            if value is None:
                continue
            assert value.startswith(("data:", "#", "tables/")), (node.tag, name, value[:80])
    assert "url(" not in dom.find("style").text()


def test_table_links_point_to_written_files(full_run):
    run_dir = full_run["dir"]
    links = [a.attrs["href"] for a in full_run["dom"].find_all("a") if a.attrs["href"].startswith("tables/")]
    assert len(links) >= 30
    for link in links:
        assert (run_dir / link).is_file(), link
    for stem in ("answer", "age", "gender", "data_size", "cost", "paired_age", "paired_gender", "subgroups_age", "audit_skipped"):
        for ext in ("csv", "json", "md"):
            assert (run_dir / "tables" / f"{stem}.{ext}").is_file()


# ---- numbers -------------------------------------------------------------------------


def _expected(metrics: pd.DataFrame, ref: str) -> tuple[str, str]:
    """Value and interval text of a cell, computed from metrics.csv independently."""
    task, metric, group, model, fraction = ref.split("|")
    rows = metrics[
        (metrics["task"] == task)
        & (metrics["metric"] == metric)
        & (metrics["group"] == group)
        & (metrics["model"] == model)
        & np.isclose(metrics["fraction"], float(fraction))
    ]
    if rows.empty:
        return MISSING, ""
    values = rows["value"].to_numpy(float)
    if len(rows) == 1:
        value, low, high = values[0], rows["ci_low"].iloc[0], rows["ci_high"].iloc[0]
    else:
        value, low, high = np.median(values), values.min(), values.max()
    interval = "" if pd.isna(low) else f"[{format_metric(metric, low)}, {format_metric(metric, high)}]"
    return format_metric(metric, value), interval


@pytest.mark.parametrize("which", ["full_run", "small_run"])
def test_numbers_in_tables_equal_metrics_csv(which, request):
    run = request.getfixturevalue(which)
    metrics = pd.read_csv(run["dir"] / "metrics.csv")
    cells = [td for td in run["dom"].find_all("td") if "data-ref" in td.attrs]
    assert len(cells) > 60
    for td in cells:
        value, interval = _expected(metrics, td.attrs["data-ref"])
        assert clean(td.find("span", cls="v").text()) == value, td.attrs["data-ref"]
        shown = [clean(s.text()) for s in td.find_all("span", cls="ci")]
        assert (shown[0] if shown else "") == interval, td.attrs["data-ref"]


def test_best_in_each_column_is_marked(full_run):
    metrics = pd.read_csv(full_run["dir"] / "metrics.csv")
    main = metrics[(metrics["fraction"] == 1.0) & (metrics["group"] == "all")]
    med = main.groupby(["model", "metric"])["value"].median()
    table = _section(full_run, "answer").find("table")
    for metric, pick in (("mae", min), ("accuracy", max), ("r2", max)):
        best = pick(med.xs(metric, level="metric").items(), key=lambda kv: kv[1])[0]
        marked = [td.attrs["data-ref"].split("|")[3] for td in table.find_all("td", cls="best") if f"|{metric}|" in td.attrs["data-ref"]]
        assert marked == [best]


def test_interval_kind_is_said(full_run, small_run):
    assert "Median over 2 trials" in clean(_section(full_run, "answer").text())
    assert "range over trials" in clean(_section(full_run, "answer").text())
    assert "bootstrap interval over test images" in clean(_section(small_run, "answer").text())


def test_exported_tables_hold_the_raw_numbers(full_run):
    run_dir = full_run["dir"]
    rows = list(csv.DictReader((run_dir / "tables" / "answer.csv").open(encoding="utf-8")))
    metrics = pd.read_csv(run_dir / "metrics.csv")
    sel = metrics[(metrics["fraction"] == 1.0) & (metrics["group"] == "all") & (metrics["model"] == "cnn-default")]
    cnn = next(r for r in rows if r["model"] == "cnn-default")
    mae = sel[(sel["task"] == "age") & (sel["metric"] == "mae")]["value"]
    assert float(cnn["age_mae"]) == pytest.approx(mae.median())
    assert float(cnn["age_mae_low"]) == pytest.approx(mae.min())
    assert next(r for r in rows if r["model"] == "hog+svm")["age_mae"] == ""
    doc = json.loads((run_dir / "tables" / "answer.json").read_text(encoding="utf-8"))
    assert doc["rows"][0]["model"] == "dummy" and "gender_accuracy_high" in doc["rows"][0]
    md = (run_dir / "tables" / "answer.md").read_text(encoding="utf-8")
    assert md.count("\n|") >= 6 and "**" in md


# ---- escaping ------------------------------------------------------------------------


def test_hostile_names_are_escaped_in_audit_and_gallery(full_run):
    html = full_run["html"]
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not full_run["dom"].find_all("script")
    assert all(img.attrs.get("src", "").startswith("data:") for img in full_run["dom"].find_all("img"))
    assert not any("onerror" in n.attrs for n in full_run["dom"].iter())

    audit_text = _section(full_run, "audit").text()
    assert HOSTILE_MISSING in audit_text and HOSTILE_FILE.replace(".jpg", ".txt") in audit_text
    assert UNICODE_FILE.replace(".jpg", "_empty.jpg") in audit_text

    gallery = [n.text() for n in _section(full_run, "worst").find_all("div", cls="fname")]
    for name in HOSTILE_NAMES:
        assert name in gallery
    titles = [n.attrs["title"] for n in _section(full_run, "worst").find_all("div", cls="fname")]
    assert HOSTILE_FILE in titles  # attribute values come back whole: the quote was escaped


def test_gallery_shows_a_placeholder_for_a_missing_file(full_run):
    worst = _section(full_run, "worst")
    assert worst.find_all("div", cls="nothumb")
    thumbs = [i for i in worst.find_all("img") if i.attrs["src"].startswith("data:image/jpeg")]
    assert thumbs and all(i.attrs["width"] == "64" for i in thumbs)
    assert "could not be read" in clean(worst.text())


# ---- what a run lacks ---------------------------------------------------------------


def test_single_fraction_and_no_cnn_are_said(small_run):
    assert "needs several fractions" in clean(_section(small_run, "data-size").text())
    assert "no CNN" in clean(_section(small_run, "training").text())
    assert not _section(small_run, "training").find_all("img")


def test_training_curves_for_each_cnn(full_run):
    training = _section(full_run, "training")
    assert len(training.find_all("img")) == 1
    assert "lowest validation loss" in training.text()


def test_report_survives_missing_pieces(tmp_path):
    run_dir = build_run_dir(
        tmp_path / "run", models=("dummy", "hog+svm", "cnn-default"), n_trials=1, n_test=40, n_train=80, images=False
    )
    for name in ("predictions.csv.gz", "paired.csv", "timings.csv", "audit.json", "config.toml"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "histories")
    dom = parse(write_report(run_dir).read_text(encoding="utf-8"))
    text = {s.attrs["id"]: clean(s.text()) for s in dom.find_all("section")}
    assert "predictions.csv.gz is missing" in text["gender"]
    assert "paired.csv is missing" in text["paired"]
    assert "timings.csv is missing" in text["cost"]
    assert "audit.json is missing" in text["audit"]
    assert "config.toml is missing" in text["reproduce"]
    assert "No training history was saved for cnn-default" in text["training"]
    assert "No model in this run predicts age" not in text["age"]


def test_missing_images_only_cost_the_thumbnails(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", models=("dummy", "hog+ridge"), n_trials=1, n_test=30, n_train=60, images=False)
    dom = parse(write_report(run_dir).read_text(encoding="utf-8"))
    worst = dom.find("section", id="worst")
    assert len(worst.find_all("div", cls="nothumb")) == len(worst.find_all("div", cls="face")) > 0


def test_not_a_run_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        write_report(tmp_path / "nope")


def test_a_run_of_an_older_facebench_is_refused_with_the_rebuild_command(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", models=("dummy", "hog+svm"), n_trials=1, fractions=(1.0,), n_test=30, n_train=60)
    (run_dir / "run.json").unlink()
    with pytest.raises(UserError, match=r"facebench 0\.1.*facebench run --config"):
        write_report(run_dir)
    assert not (run_dir / "report.html").exists()


def test_views_section_adds_its_section_escaped(tmp_path, monkeypatch):
    run_dir = build_run_dir(tmp_path / "run", models=("dummy", "hog+svm"), n_trials=1, fractions=(1.0,), n_test=30, n_train=60)
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    monkeypatch.setattr(
        "facebench.reports.sections.seen.views_section",
        lambda run: {
            "intro": "HOG <b>sees</b> edges",
            "figures": [{"title": "face 1", "image": uri, "caption": HOSTILE_FILE}, {"title": "bad", "image": "http://x/y.png"}],
        },
    )
    html = write_report(run_dir).read_text(encoding="utf-8")
    dom = parse(html)
    ids = [s.attrs["id"] for s in dom.find_all("section")]
    assert ids.index("seen") == ids.index("worst") + 1
    seen = dom.find("section", id="seen")
    assert "HOG <b>sees</b> edges" in seen.text() and not seen.find_all("b")
    assert [i.attrs["src"] for i in seen.find_all("img")] == [uri]
    assert "http://" not in html


# ---- plots ---------------------------------------------------------------------------


def test_plot_history_takes_keras_dicts_and_csv_tables():
    from facebench.reports.plots import new_figure, to_data_uri

    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.4, 2.0], "gender_accuracy": [0.6, 0.7, 0.8]}
    ax = plot_history(history, "loss")
    assert [line.get_label() for line in ax.get_lines()] == ["training", "validation"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    frame = pd.DataFrame({"epoch": [0, 1, 2], **history})
    fig = new_figure(3, 2)
    ax = fig.subplots()
    plot_history(frame, "gender_accuracy", ax, label="trial 0")
    assert [line.get_label() for line in ax.get_lines()] == ["trial 0 training"]
    assert to_data_uri(fig).startswith("data:image/png;base64,")
    with pytest.raises(KeyError, match="age_mae"):
        plot_history(history, "age_mae")


def test_report_size_stays_small(full_run):
    # build time is measured by benchmarks/bench_report.py, not asserted here
    assert full_run["report"].stat().st_size < 2_000_000


# ---- explore -------------------------------------------------------------------------


class StandInDataset:
    """The shape of facebench.data.Dataset: .table and .audit."""

    def __init__(self, table: pd.DataFrame, audit: dict) -> None:
        self.table, self.audit = table, audit


def test_explore_page(full_run, tmp_path):
    run_dir = full_run["dir"]
    split = pd.read_csv(run_dir / "split.csv", dtype={"image_id": str, "path": str}, keep_default_na=False, na_values={"race": [""]})
    table = split[split["trial"] == 0][["image_id", "path", "age", "gender", "race"]].reset_index(drop=True)
    table = pd.concat([table[table["image_id"].isin(HOSTILE_NAMES)], table]).drop_duplicates("image_id").head(40)
    table["race"] = table["race"].astype("Int64")
    audit = json.loads((run_dir / "audit.json").read_text(encoding="utf-8"))
    out = write_explore(StandInDataset(table, audit), tmp_path / "explore")
    assert out == tmp_path / "explore" / "explore.html"
    assert json.loads((tmp_path / "explore" / "audit.json").read_text(encoding="utf-8")) == audit
    html = out.read_text(encoding="utf-8")
    dom = parse(html)
    assert [s.attrs["id"] for s in dom.find_all("section")] == ["counts", "labels", "samples", "audit"]
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html and "http://" not in html and "https://" not in html
    names = [n.text() for n in dom.find_all("div", cls="fname")]
    assert len(names) == 40 and set(HOSTILE_NAMES) <= set(names)
    assert HOSTILE_MISSING in dom.find("section", id="audit").text()
    for img in dom.find_all("img"):
        data = base64.b64decode(img.attrs["src"].split(",", 1)[1])
        Image.open(io.BytesIO(data)).load()
    assert dom.find_all("div", cls="banner")
    counts = clean(dom.find("section", id="counts").text())
    assert "Found 524" in counts and "Skipped 4" in counts


def test_explore_on_the_real_loader(tmp_path):
    from facebench import data

    faces = tmp_path / "faces"
    data.synthesize(faces, n=60, seed=1, size=64)
    (faces / '"><img src=x onerror=alert(1)>.jpg').write_bytes(b"not an image")
    out = write_explore(data.load_dataset(faces), tmp_path / "out")
    html = out.read_text(encoding="utf-8")
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert len(parse(html).find_all("div", cls="face")) == 48
    assert 'id="conflicts"' not in html  # no identical images with other labels: no such section


def test_explore_shows_identical_images_with_disagreeing_labels_side_by_side(tmp_path):
    import shutil

    from facebench import data

    faces = tmp_path / "faces"
    data.synthesize(faces, n=40, seed=3, size=64)
    first = sorted(faces.glob("*.jpg"))[0]
    age, gender, rest = first.name.split("_", 2)
    twin = faces / f"{int(age) + 30}_{1 - int(gender)}_{rest}"
    shutil.copy(first, twin)  # the same pixels under other labels
    dom = parse(write_explore(data.load_dataset(faces), tmp_path / "out").read_text(encoding="utf-8"))
    section = dom.find("section", id="conflicts")
    groups = section.find_all("div", cls="conflict")
    assert len(groups) == 1
    items = groups[0].find_all("div", cls="face")
    assert [i.find("div", cls="fname").text() for i in items] == sorted([first.name, twin.name])
    assert all(i.find("img") is not None for i in items)  # thumbnails, not names alone
    lines = " ".join(i.text() for i in items)
    assert f"age {int(age)}," in lines and f"age {int(age) + 30}," in lines


# ---- a real run ----------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_a_real_run(tmp_path):
    from facebench import compare, data

    faces = tmp_path / "faces"
    data.synthesize(faces, n=160, seed=0, size=64)  # the label detector embeds every face with dlib
    config = compare.load_config(
        preset="quick",
        data=faces,
        out=tmp_path / "run",
        overrides=["models.cnn=[]", "bootstrap=200", "data.label_errors=keep"],
    )
    run_dir = compare.run(config, quiet=True)
    html = write_report(run_dir).read_text(encoding="utf-8")
    dom = parse(html)
    ids = [s.attrs["id"] for s in dom.find_all("section")]
    from facebench.reports.sections.doubt import with_labels_entry

    expected = with_labels_entry(SECTIONS, {"present": True})  # the run looked for label errors
    assert [i for i in ids if i != "seen"] == [sid for sid, _ in expected if sid != "seen"]
    assert (run_dir / "label_issues.csv").is_file() and (run_dir / "label_paired.csv").is_file()
    metrics = pd.read_csv(run_dir / "metrics.csv")
    cells = [td for td in dom.find_all("td") if "data-ref" in td.attrs]
    assert cells
    for td in cells:
        value, interval = _expected(metrics, td.attrs["data-ref"])
        assert clean(td.find("span", cls="v").text()) == value, td.attrs["data-ref"]
    assert "Synthetic faces" in html and "http://" not in html
    assert "no CNN" in clean(dom.find("section", id="training").text())


def test_paired_significance_is_judged_on_holm_adjusted_p_values(tmp_path):
    run_dir = build_run_dir(
        tmp_path / "run", models=("dummy", "hog+svm", "lbp+svm"), n_trials=1, fractions=(1.0,), n_test=60, n_train=80, images=False
    )
    paired = pd.read_csv(run_dir / "paired.csv")
    assert "p_holm" in paired.columns
    pair = (paired["task"] == "gender") & (paired["model_a"] == "hog+svm") & (paired["model_b"] == "lbp+svm")
    paired.loc[pair, ["p_value", "p_holm", "effect"]] = [0.01, 0.2, 0.05]  # raw p small, adjusted p not
    paired.to_csv(run_dir / "paired.csv", index=False)
    dom = parse(write_report(run_dir).read_text(encoding="utf-8"))
    section = dom.find("section", id="paired")
    (table,) = section.find_all("table")  # gender only: the three models have no age head
    row = next(r for r in table.find_all("tr") if clean(r.text()).startswith("hog+svm"))
    cell = next(td for td in row.find_all("td") if "p = 0.010" in clean(td.text()))
    assert "Holm 0.200" in clean(cell.text())
    assert "best" not in cell.attrs.get("class", "")  # not highlighted: it does not survive the adjustment
    assert "Holm's adjustment corrects for that" in clean(section.text())
