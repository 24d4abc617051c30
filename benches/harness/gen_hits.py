#!/usr/bin/env python3
"""Synthetic web-analytics rows shaped like ClickBench's `hits` table (the 27 columns its 43
queries use), written as one Parquet file with zstd.

Shapes, chosen by hand, not fitted to real data: popularity of sites, pages, users and search
phrases falls off like a power law; traffic follows a daily and weekly rhythm over `--days`
days from 2013-07-01; CounterID 62 is the busiest site (queries 37-43 filter on it); the
constants of queries 20, 41 and 42 occur in the data; a few URLs and titles mention Google
(queries 21-23). Rows are in EventTime order, as a time-partitioned store holds them.

    python gen_hits.py --rows 10000000 --out hits.parquet [--seed 42]
"""
import argparse
import hashlib
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

USER_Q20 = 435090932899640449
REFERER_HASH_Q41 = 3594120000172545465
URL_HASH_Q42 = 2868770270353813622
DAY = 86400


def power_law(rng, n, size, exponent):
    """Ranks in [0, size) where rank r has weight (r + 1) ** -exponent."""
    weights = np.arange(1, size + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n)).astype(np.int64)


def words(rng, count, letters, lo, hi):
    alphabet = np.array(list(letters))
    lengths = rng.integers(lo, hi + 1, count)
    picks = rng.integers(0, len(alphabet), lengths.sum())
    out, pos = [], 0
    for n in lengths:
        out.append("".join(alphabet[picks[pos:pos + n]]))
        pos += n
    return out


def stable_hash(strings):
    out = np.empty(len(strings), dtype=np.int64)
    for i, s in enumerate(strings):
        out[i] = int.from_bytes(hashlib.md5(s.encode()).digest()[:8], "little", signed=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=31)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="hits.parquet")
    p.add_argument("--row-group", type=int, default=1_000_000)
    a = p.parse_args()
    started = time.time()
    rng = np.random.default_rng(a.seed)
    n = a.rows

    sites = 15_000
    users = max(1_000, n // 4)
    phrases = max(1_000, n // 12)
    regions = 8_000
    models = 300

    # Sites: CounterID values, 62 the most popular.
    counter_ids = rng.choice(np.arange(100, 400_000), sites, replace=False).astype(np.int32)
    counter_ids[0] = 62
    site_of_row = power_law(rng, n, sites, 1.1)

    # Users and their stable attributes.
    user_ids = rng.integers(1, 2**62, users, dtype=np.int64)
    user_ids[50] = USER_Q20
    user_of_row = power_law(rng, n, users, 0.8)
    user_region = rng.choice(rng.choice(np.arange(1, 25_000), regions, replace=False), users,
                             p=None).astype(np.int32)
    user_ip = rng.integers(-2**31, 2**31 - 1, users, dtype=np.int64).astype(np.int32)
    user_os = rng.integers(0, 40, users).astype(np.int16)
    user_agent = rng.integers(0, 25, users).astype(np.int16)
    screen = np.array([1920, 1366, 1440, 1280, 1536, 1600, 1024, 360, 390, 414, 2560, 0], dtype=np.int16)
    user_width = rng.choice(screen, users, p=[.24, .17, .1, .1, .08, .06, .06, .06, .05, .04, .03, .01])
    user_height = rng.choice(np.array([1080, 768, 900, 1024, 720, 864, 640, 0], dtype=np.int16), users)
    mobile = rng.random(users) < 0.1
    user_model = np.where(mobile, power_law(rng, users, models, 1.0) + 1, 0)
    model_names = [""] + ["iPhone", "iPad", "Galaxy S4", "Galaxy Note", "Lumia 920", "Nexus 5"] + \
        [f"Phone {w}" for w in words(rng, models - 6, "abcdefghijklmnopqrstuvwxyz", 3, 6)]
    model_vendor = np.r_[0, rng.integers(1, 30, models)].astype(np.int16)

    # Time: weekends quieter, afternoons busier.
    day_weight = np.array([0.75 if (d + 0) % 7 in (5, 6) else 1.0 for d in range(a.days)])
    hour_weight = np.array([2, 1.4, 1, .8, .7, .9, 1.6, 3, 4.8, 6.2, 7, 7, 7.1, 7, 6.9, 6.7, 6.3, 6, 5.6, 5.4, 5.3, 4.8, 3.9, 2.9])
    seconds = (rng.choice(a.days, n, p=day_weight / day_weight.sum()) * DAY
               + rng.choice(24, n, p=hour_weight / hour_weight.sum()) * 3600 + rng.integers(0, 3600, n))
    order = np.argsort(seconds, kind="stable")
    seconds = seconds[order]
    site_of_row = site_of_row[order]
    user_of_row = user_of_row[order]
    start = int(np.datetime64("2013-07-01T00:00:00", "s").astype(np.int64))

    # Pages: each site has a power-law set of pages; URL dictionary over (site, page).
    pages_per_site = np.maximum(4, (2_000 * (np.arange(1, sites + 1) ** -0.6))).astype(np.int64)
    page_of_row = np.minimum(power_law(rng, n, int(pages_per_site.max()), 1.0), pages_per_site[site_of_row] - 1)
    page_key = site_of_row * 1_000_000 + page_of_row

    # Referers: none, same site, another site, or a search engine with a phrase.
    kind = rng.choice(4, n, p=[0.4, 0.33, 0.14, 0.13])
    phrase_of_row = np.where(kind == 3, power_law(rng, n, phrases, 0.85), -1)
    ref_site = np.where(kind == 2, power_law(rng, n, sites, 1.1), site_of_row)
    ref_page = np.minimum(power_law(rng, n, int(pages_per_site.max()), 1.0), pages_per_site[ref_site] - 1)
    ref_key = np.where((kind == 1) | (kind == 2), ref_site * 1_000_000 + ref_page, -1)

    keys, inverse = np.unique(np.r_[page_key, ref_key[ref_key >= 0]], return_inverse=True)
    url_of_row = inverse[:n]
    ref_url_of_row = np.full(n, -1, dtype=np.int64)
    ref_url_of_row[ref_key >= 0] = inverse[n:]

    tlds = [".ru", ".ru", ".com", ".net", ".org", ".de", ".ua"]
    names = words(rng, sites, "abcdefghijklmnopqrstuvwxyz", 4, 9)
    domains = [("www." if i % 4 == 0 else "") + names[i] + tlds[i % len(tlds)] for i in range(sites)]
    domains[300] = "news.google.com"
    domains[301] = "maps.google.ru"
    sections = words(rng, 200, "abcdefghijklmnopqrstuvwxyz", 3, 9)
    slugs = words(rng, 4000, "abcdefghijklmnopqrstuvwxyz0123456789", 4, 12)
    cyrillic = words(rng, 25_000, "абвгдежзиклмнопрстуфхцчшэюя", 2, 10)
    site_titles = [w.capitalize() for w in words(rng, sites, "абвгдежзиклмнопрстуфхцчшэюя", 4, 10)]

    key_site = keys // 1_000_000
    key_page = keys % 1_000_000
    urls, titles = [], []
    sec = rng.integers(0, len(sections), len(keys))
    slug = rng.integers(0, len(slugs), len(keys))
    query = rng.random(len(keys))
    title_words = rng.integers(0, len(cyrillic), (len(keys), 5))
    title_len = rng.integers(2, 6, len(keys))
    google = rng.random(len(keys)) < 0.008
    for i in range(len(keys)):
        s, pg = int(key_site[i]), int(key_page[i])
        if pg == 0:
            u = f"http://{domains[s]}/"
        else:
            u = f"http://{domains[s]}/{sections[sec[i]]}/{slugs[slug[i]]}-{pg}.html"
            if query[i] < 0.3:
                u += f"?p={pg % 13}&from={sections[(sec[i] + 3) % 200]}"
            elif query[i] < 0.304:
                u += "?utm_source=google"
        urls.append(u)
        t = " ".join(cyrillic[w] for w in title_words[i, :title_len[i]])
        if google[i] or s in (300, 301):
            t = "Google " + t
        titles.append(f"{t} - {site_titles[s]}")

    used_phrases = np.unique(phrase_of_row[phrase_of_row >= 0])
    phrase_words = rng.integers(0, len(cyrillic), (len(used_phrases), 4))
    phrase_len = rng.choice([1, 2, 3, 4], len(used_phrases), p=[.3, .4, .2, .1])
    phrase_text = [" ".join(cyrillic[w] for w in phrase_words[j, :phrase_len[j]]) for j in range(len(used_phrases))]
    phrase_index = np.zeros(n, dtype=np.int64)
    has_phrase = phrase_of_row >= 0
    phrase_index[has_phrase] = np.searchsorted(used_phrases, phrase_of_row[has_phrase]) + 1
    engines = {2: "http://yandex.ru/yandsearch?text=", 3: "https://www.google.com/search?q=",
               4: "http://go.mail.ru/search?q=", 5: "http://www.bing.com/search?q="}
    engine_of_phrase = rng.choice([2, 3, 4, 5], len(used_phrases), p=[.6, .3, .06, .04]).astype(np.int16)
    search_urls = [engines[int(engine_of_phrase[j])] + phrase_text[j].replace(" ", "+") for j in range(len(used_phrases))]

    referer_dict = [""] + urls + search_urls
    referer_of_row = np.zeros(n, dtype=np.int64)
    referer_of_row[ref_url_of_row >= 0] = ref_url_of_row[ref_url_of_row >= 0] + 1
    referer_of_row[has_phrase] = len(urls) + phrase_index[has_phrase]

    url_hash = stable_hash(urls)
    site62 = np.nonzero(key_site == 0)[0]
    url_hash[site62[1]] = URL_HASH_Q42
    url_hash[site62[2]] = REFERER_HASH_Q41
    referer_hash = np.r_[np.int64(0), url_hash, stable_hash(search_urls)]

    search_engine = np.zeros(n, dtype=np.int16)
    search_engine[has_phrase] = engine_of_phrase[phrase_index[has_phrase] - 1]
    adv = np.where(rng.random(n) < 0.015, rng.choice([2, 3, 4, 12, 13, 27], n, p=[.3, .25, .15, .12, .1, .08]), 0).astype(np.int16)
    traffic = np.choose(kind, [0, -1, 1, 2]).astype(np.int16)
    traffic[(kind == 0) & (rng.random(n) < 0.2)] = 6
    traffic[adv != 0] = 3
    ip = user_ip[user_of_row].copy()
    moving = rng.random(n) < 0.05
    ip[moving] = rng.integers(-2**31, 2**31 - 1, int(moving.sum()), dtype=np.int64).astype(np.int32)
    width = user_width[user_of_row]
    model = user_model[user_of_row]

    columns = {
        "WatchID": pa.array(rng.integers(1, 2**63 - 1, n, dtype=np.int64)),
        "Title": pa.DictionaryArray.from_arrays(pa.array(url_of_row.astype(np.int32)), pa.array(titles)).cast(pa.string()),
        "EventTime": pa.array((start + seconds).astype("datetime64[s]")),
        "EventDate": pa.array(((start + seconds) // DAY).astype(np.int32), type=pa.int32()).cast(pa.date32()),
        "CounterID": pa.array(counter_ids[site_of_row]),
        "ClientIP": pa.array(ip),
        "RegionID": pa.array(user_region[user_of_row]),
        "UserID": pa.array(user_ids[user_of_row]),
        "OS": pa.array(user_os[user_of_row]),
        "UserAgent": pa.array(user_agent[user_of_row]),
        "URL": pa.DictionaryArray.from_arrays(pa.array(url_of_row.astype(np.int32)), pa.array(urls)).cast(pa.string()),
        "Referer": pa.DictionaryArray.from_arrays(pa.array(referer_of_row.astype(np.int32)), pa.array(referer_dict)).cast(pa.string()),
        "IsRefresh": pa.array((rng.random(n) < 0.08).astype(np.int16)),
        "ResolutionWidth": pa.array(width),
        "MobilePhone": pa.array(model_vendor[model]),
        "MobilePhoneModel": pa.DictionaryArray.from_arrays(pa.array(model.astype(np.int32)), pa.array(model_names)).cast(pa.string()),
        "TraficSourceID": pa.array(traffic),
        "SearchEngineID": pa.array(search_engine),
        "SearchPhrase": pa.DictionaryArray.from_arrays(pa.array(phrase_index.astype(np.int32)), pa.array([""] + phrase_text)).cast(pa.string()),
        "AdvEngineID": pa.array(adv),
        "WindowClientWidth": pa.array(np.maximum(0, width - rng.integers(0, 30, n)).astype(np.int16)),
        "WindowClientHeight": pa.array(np.maximum(0, user_height[user_of_row] - rng.integers(50, 180, n)).astype(np.int16)),
        "IsLink": pa.array((rng.random(n) < 0.03).astype(np.int16)),
        "IsDownload": pa.array((rng.random(n) < 0.01).astype(np.int16)),
        "DontCountHits": pa.array((rng.random(n) < 0.02).astype(np.int16)),
        "RefererHash": pa.array(referer_hash[referer_of_row]),
        "URLHash": pa.array(url_hash[url_of_row]),
    }
    table = pa.table(columns)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)
    pq.write_table(table, a.out, compression="zstd", row_group_size=a.row_group)
    print(f"wrote {n} rows to {a.out} ({os.path.getsize(a.out) / 1e6:.0f} MB) in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
