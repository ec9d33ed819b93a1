#!/usr/bin/env python3
"""Writes a usage export (CSV) for the `reclaim usage import` benchmark.

The mix is what an inventory and SaaS-usage export of a mid-size organisation looks like, so
every rule kind of bench/usage-seed.json has work to do:

- desktop software (Adobe, Autodesk, Microsoft Visio, Skype for Business) with a spread of
  last-used dates: recent, 30-90 days, older than 90 days, never;
- SaaS seats (Zoom, Webex, Tableau, Jira) with hours used in the window;
- overlapping pairs (a user with both Zoom and Webex);
- users the rules exclude: VIPs, members of `executives`, people provisioned last month;
- the same seat listed twice (two inventory sources), which must not give two candidates.

Deterministic: the same --rows and --seed write the same file (dates are relative to --today).

    python3 bench/gen-usage.py --rows 100000 > usage-100k.csv
"""

import argparse
import csv
import datetime as dt
import random
import sys

COLUMNS = [
    "user_id", "user_name", "user_email", "user_vip", "user_groups", "provisioned_at",
    "applies_to", "device", "publisher", "product", "version", "sku", "last_used_at",
    "hours_used", "price_per_right",
]

# (publisher, product, version, applies_to, price, weight)
DESKTOP = [
    ("Adobe", "Acrobat Pro", "24.1", "installed-software", "239.88", 30),
    ("Adobe", "Photoshop", "25.3", "installed-software", "263.88", 10),
    ("Autodesk", "AutoCAD", "2025", "installed-software", "1975.00", 6),
    ("Microsoft", "Visio Professional", "2021", "installed-software", "530.00", 10),
    ("Microsoft", "Skype for Business", "2016", "installed-software", "24.00", 8),
    ("7-Zip", "7-Zip", "23.01", "installed-software", "0.00", 10),
]
SAAS = [
    ("Zoom", "Zoom Pro", None, "subscription", "149.90", 12),
    ("Cisco", "Webex Meetings", None, "subscription", "144.00", 6),
    ("Salesforce", "Tableau Creator", None, "subscription", "900.00", 4),
    ("Atlassian", "Jira Software", None, "subscription", "93.00", 8),
]
CATALOG = DESKTOP + SAAS
WEIGHTS = [c[5] for c in CATALOG]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--today", default=dt.date.today().isoformat(),
                    help="dates are relative to this day (YYYY-MM-DD)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    today = dt.date.fromisoformat(args.today)
    users = max(1, args.rows // 5)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)

    def day(days_ago: int) -> str:
        return (today - dt.timedelta(days=days_ago)).isoformat()

    def last_used() -> str:
        r = rng.random()
        if r < 0.40:
            return day(rng.randint(0, 29))
        if r < 0.60:
            return day(rng.randint(30, 89))
        if r < 0.85:
            return day(rng.randint(91, 720))
        return ""  # never used

    written = 0
    n = 0
    while written < args.rows:
        # One user: the same attributes on every row, and a few distinct products.
        uid = f"u{n:06d}"
        vip = "yes" if n % 50 == 0 else ""
        groups = "executives" if n % 97 == 0 else ("staff" if n % 3 else "staff;engineering")
        provisioned = day(rng.randint(1, 25)) if n % 20 == 0 else day(rng.randint(60, 3000))
        device = f"PC-{n:06d}"
        products = []
        for _ in range(rng.randint(2, 8)):
            p = rng.choices(CATALOG, WEIGHTS)[0]
            if p not in products:
                products.append(p)
        # Overlapping pairs: some Zoom holders also hold Webex.
        webex = SAAS[1]
        if SAAS[0] in products and webex not in products and rng.random() < 0.3:
            products.append(webex)
        rows = []
        for pub, prod, ver, applies, price, _ in products:
            hours = ""
            if applies == "subscription":
                hours = "" if rng.random() < 0.1 else f"{rng.expovariate(1 / 12):.1f}"
            rows.append([
                uid, f"User {n}", f"{uid}@example.com", vip, groups, provisioned, applies,
                device if applies == "installed-software" else "", pub, prod, ver or "",
                f"SKU-{prod.upper().replace(' ', '-')}" if applies == "subscription" else "",
                last_used(), hours, price,
            ])
        # The same seat from a second inventory source, now and then.
        if rng.random() < 0.05:
            rows.append(list(rows[0]))
        for row in rows[: args.rows - written]:
            out.writerow(row)
            written += 1
        n += 1


if __name__ == "__main__":
    main()
