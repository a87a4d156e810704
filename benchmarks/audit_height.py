"""How tall the report's data audit is in Chromium at 1,280 px wide, with a full-UTKFace-sized audit.

Builds a small run directory (``tests/rundir_fixture.py``), gives it an audit the size of
the full UTKFace's (375 exact-duplicate groups, 531 skipped files, 256 near-duplicate
groups; ``--no-near`` leaves the near-duplicates out, as an audit written before they
were looked for), writes its report with the facebench that is imported, and prints the
page's and the audit section's height. Needs the distribution's Chromium
(``/usr/bin/chromium``) and the playwright package (no browser download).

    python benchmarks/audit_height.py --out /tmp/audit-height
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def big_audit(near: bool) -> dict:
    dups = [{"files": [f"a{i}.jpg", f"b{i}.jpg"], "action": "same pixels, labels disagree: all excluded"}
            for i in range(375)]
    audit = {"found": 24_106, "used": 23_575, "source": "folder", "root": "/data/UTKFace",
             "skipped": [{"file": f"s{i}.jpg", "reason": "exact duplicate with disagreeing labels"} for i in range(531)],
             "duplicates": dups}
    if near:
        listed = [{"files": [f"c{i}.jpg", f"d{i}.jpg"], "ages": [20, 20 + i % 5], "genders": [0, 0], "races": [1, 1],
                   "age_spread": i % 5, "gender_conflict": False, "max_bits": 2,
                   "action": "kept together on one side of every split"} for i in range(256)]
        audit["near_duplicates"] = {"groups": 256, "faces": 512, "pairs": 256, "max_bits": 2, "hash": "phash",
                                    "labels_rule": "keep-all", "labels_disagree": 205, "age_disagree": 205,
                                    "gender_conflict": 0, "excluded": 0, "listed": listed}
    return audit


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/audit-height")
    ap.add_argument("--no-near", action="store_true")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    import facebench
    from facebench.reports import write_report
    from rundir_fixture import build_run_dir

    run = Path(args.out)
    shutil.rmtree(run, ignore_errors=True)
    build_run_dir(run, fractions=(1.0,), n_test=40, n_train=80, n_trials=1, images=False)
    (run / "audit.json").write_text(json.dumps(big_audit(not args.no_near)))
    html = write_report(run)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                           "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(html.resolve().as_uri())
        height = page.evaluate("document.documentElement.scrollHeight")
        audit = page.query_selector("#audit").bounding_box()["height"]
        browser.close()
    print(f"facebench {facebench.__file__}: page {height:,} px, data audit {round(audit):,} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
