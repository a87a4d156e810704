"""The sweep page (facebench.reports.sweep) on sweep directories built by hand (tests/sweep_fixture.py).

Checks every section is there, the numbers on the page are the ones in points.csv,
the page is self-contained and small, the edge cases (no point yet, only failed
points, a classical grid, a running sweep) render and say so, and the page loads in
headless Chromium with no request and no console error.
"""

from __future__ import annotations

import csv
import html as html_lib
import re
from pathlib import Path

import pytest

from facebench.errors import UserError
from facebench.reports.sweep import SECTIONS, read_sweep, write_sweep_report
from facebench.reports.tables import format_metric
from sweep_fixture import FAIL_REASON, build_sweep_dir

KINDS = {
    "cnn": dict(kind="cnn"),
    "classical": dict(kind="classical"),
    "empty": dict(kind="empty", finished=False),
    "failed": dict(kind="failed"),
    "oat": dict(kind="cnn", method="one-at-a-time", objective="both"),
    "gender": dict(kind="cnn", objective="gender_accuracy", finished=False),
}
REF = re.compile(r'data-ref="(\d+)\|(val_\w+)"[^>]*>\s*(?:<span class="v">)?([^<]+)<')


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("sweeps")
    out = {}
    for name, kw in KINDS.items():
        d = build_sweep_dir(root / name, **kw)
        page = write_sweep_report(d)
        out[name] = (d, page.read_text(encoding="utf-8"))
    return out


def _points(d: Path) -> list[dict[str, str]]:
    with open(d / "points.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _best(rows, column: str, direction: str = "min") -> dict[str, str]:
    done = [r for r in rows if r["state"] == "complete" and r[column]]
    sign = 1 if direction == "min" else -1
    return min(done, key=lambda r: (sign * float(r[column]), int(r["number"])))


def _text(html: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.mark.parametrize("name", list(KINDS))
def test_every_section_is_there_and_the_page_is_self_contained(pages, name):
    d, html = pages[name]
    assert html.count("<section ") == len(SECTIONS) == 7
    for sid, title in SECTIONS:
        assert f'<section id="{sid}">' in html and title in html
    assert "http://" not in html and "https://" not in html
    assert not re.findall(r'(?:src|href)="(?!data:|#)', html), "a reference that is not inline"
    assert (d / "report.html").stat().st_size < 5_000_000
    assert "Validation figures, not test figures." in html


def test_numbers_on_the_page_are_those_of_points_csv(pages):
    d, html = pages["cnn"]
    rows = {r["number"]: r for r in _points(d)}
    refs = REF.findall(html)
    assert len(refs) == 2 + 2 * 9  # the headline, and both metrics of the 9 complete points
    for number, column, text in refs:
        metric = "mae" if column == "val_age_mae" else "accuracy"
        assert text.strip() == format_metric(metric, float(rows[number][column])), (number, column)

    best = _best(rows.values(), "val_age_mae")
    base = next(r for r in rows.values() if r["is_base"] == "true")
    headline = html.split('<section id="parameters">')[0]
    assert f'data-ref="{best["number"]}|val_age_mae">{format_metric("mae", float(best["val_age_mae"]))}<' in headline
    interval = f'[{format_metric("mae", float(best["val_age_mae_low"]))}, {format_metric("mae", float(best["val_age_mae_high"]))}]'
    assert interval in headline
    diff = float(best["val_age_mae"]) - float(base["val_age_mae"])
    assert f'<b class="difference">{diff:+.2f}</b>' in headline
    for state in ("complete", "pruned", "failed"):
        n = sum(r["state"] == state for r in rows.values())
        assert f'<b data-count="{state}">{n}</b>' in headline


def test_best_points_table_is_ordered_by_the_objective(pages):
    d, html = pages["cnn"]
    table = html.split('<section id="best">')[1].split("</section>")[0]
    shown = [int(n) for n, col, _ in REF.findall(table) if col == "val_age_mae"]
    done = sorted((float(r["val_age_mae"]), int(r["number"])) for r in _points(d) if r["state"] == "complete")
    assert shown[: len(done)] == [n for _, n in done][:10]
    assert "[16, 32, 64, 128]" in table and "Epochs" in table


def test_gender_objective_picks_the_highest_accuracy(pages):
    d, html = pages["gender"]
    best = _best(_points(d), "val_gender_accuracy", "max")
    headline = html.split('<section id="parameters">')[0]
    assert f"Best <b>#{best['number']} (best" in headline
    assert "Still running" in headline


def test_command_and_configs_are_shown(pages):
    d, html = pages["cnn"]
    text = _text(html)
    assert f"facebench run --data /data/utkface-5k --config {d / 'best.toml'}" in text
    best = (d / "best.toml").read_text(encoding="utf-8")
    assert "[cnn.sweep-best]" in best and " ".join(best.split()) in " ".join(text.split())  # best.toml, whole
    assert 'base = "cnn:default"' in text and "[space.learning_rate]" in text  # sweep.toml
    assert "240 faces held out of the training part" in text and "never used by any point" in text


def test_training_curves_show_the_pruned_points(pages):
    _, html = pages["cnn"]
    curves = html.split('<section id="curves">')[1].split("</section>")[0]
    assert "data:image/png;base64," in curves and "the 2 pruned points" in curves
    time = _text(html.split('<section id="time">')[1].split("</section>")[0])
    assert FAIL_REASON in time and "pruned after epoch 3" in time


def test_classical_grid_has_no_curves_and_no_epochs(pages):
    _, html = pages["classical"]
    assert "A classical model: it has no training curves." in html
    best = html.split('<section id="best">')[1].split("</section>")[0]
    assert "Epochs" not in best and "gender accuracy" not in best
    assert "grid exhausted" in html and "Validation gender accuracy" not in html


def test_one_at_a_time_says_so(pages):
    _, html = pages["oat"]
    params = html.split('<section id="parameters">')[1].split("</section>")[0]
    assert "one parameter at a time" in params and "independent-variable design" in params
    assert "Validation age MAE (years)" in params and "Validation gender accuracy" in params
    assert "Pareto front" in html


@pytest.mark.parametrize("name", ["empty", "failed"])
def test_no_complete_point_still_renders(pages, name):
    _, html = pages[name]
    text = _text(html)
    assert "No point has completed" in text and "No complete point yet." in text
    assert "No best.toml yet" in text
    if name == "failed":
        assert text.count(FAIL_REASON) == 3
    else:
        assert "Still running" in text and "No curves.csv yet" in text


def test_text_from_the_sweep_is_escaped(tmp_path):
    d = build_sweep_dir(tmp_path / "s", "failed")
    points = (d / "points.csv").read_text(encoding="utf-8").replace(FAIL_REASON, "<script>alert(1)</script>")
    (d / "points.csv").write_text(points, encoding="utf-8")
    html = write_sweep_report(d, tmp_path / "elsewhere" / "page.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not (d / "report.html").exists()


def test_not_a_sweep_directory_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no sweep.json"):
        write_sweep_report(tmp_path)
    d = build_sweep_dir(tmp_path / "s", "empty")
    (d / "sweep.json").write_text('{"format": 99}', encoding="utf-8")
    with pytest.raises(UserError, match="format 99"):
        read_sweep(d)


def test_reader_parses_parameter_values(pages):
    d, _ = pages["cnn"]
    sweep = read_sweep(d)
    assert sweep.params == ["filters", "dropout", "learning_rate", "batch_size"]
    base = sweep.point(sweep.base_number)
    assert base["param.filters"] == [32, 64, 128, 256] and base["param.batch_size"] == 32
    assert sweep.curves is not None and set(sweep.curves.columns) >= {"number", "epoch", "val_loss"}


@pytest.mark.browser
def test_sweep_page_in_headless_chromium(pages):
    from test_browser import _watched_page

    d, _ = pages["cnn"]
    with _watched_page() as (page, requests, problems):
        page.goto((d / "report.html").as_uri(), wait_until="load")
        page.wait_for_timeout(200)
        sections = page.locator("section").count()
        images = page.evaluate("document.images.length")
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        width = page.evaluate("document.documentElement.scrollWidth")
        text = page.inner_text("body")
    assert requests, "the page was never requested"
    outside = [u[:100] for u in requests if not u.startswith(("file:", "data:"))]
    assert not outside, f"requests left the file: {outside}"
    assert not problems, problems
    assert sections == 7 and images == 4 and broken == 0  # by parameter, importances, curves, time
    assert width <= 1366, f"the page scrolls sideways on a laptop screen ({width} px)"
    assert "Validation figures, not test figures." in text


def test_both_objectives_without_best_point_pick_the_sweeps_winner(tmp_path):
    """Lowest MAE on the Pareto front among the points at least as accurate as the base."""
    import json

    d = build_sweep_dir(tmp_path / "s", "cnn", objective="both")
    info = json.loads((d / "sweep.json").read_text(encoding="utf-8"))
    del info["best_point"]
    (d / "sweep.json").write_text(json.dumps(info), encoding="utf-8")
    headline = write_sweep_report(d).read_text(encoding="utf-8").split('<section id="parameters">')[0]
    done = [r for r in _points(d) if r["state"] == "complete"]
    mae = {r["number"]: float(r["val_age_mae"]) for r in done}
    acc = {r["number"]: float(r["val_gender_accuracy"]) for r in done}
    front = [n for n in mae if not any(mae[o] <= mae[n] and acc[o] >= acc[n] and (mae[o], acc[o]) != (mae[n], acc[n]) for o in mae)]
    base = next(r["number"] for r in done if r["is_base"] == "true")
    winner = min([n for n in front if acc[n] >= acc[base]] or front, key=lambda n: (mae[n], int(n)))
    assert headline.count(f"Best <b>#{winner} (best)") == 2
