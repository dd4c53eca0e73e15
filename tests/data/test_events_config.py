"""Behaviour sequences from an event log's files (`kind: events` data configs)."""

from __future__ import annotations

import numpy as np
import pytest

from tfzoo.data.behaviour_sequences import (
    ChannelSizes,
    bag_features,
    build_behaviour_sequences,
    channel_columns,
    channel_sizes,
)
from tfzoo.data.data_config import DataConfigError, read_data_config
from tfzoo.data.errors import DataFormatError
from tfzoo.data.events_config import EventsConfig, event_sequence_splits
from tfzoo.data.splits import ordered_split
from tfzoo.data.tabular import TabularData

DAY = 86_400

# Two users named in text, items by large numbers, three actions; alice's events are
# written out of time order. Item 900 sorts after 12000 as text, before it as a number.
EVENTS = """\
user,item,category,action,time
alice,12000,toys,view,{t1}
alice,900,books,view,{t0}
bob,900,books,cart,{t0}
alice,12000,toys,buy,{t2}
bob,31,,view,{t1}
alice,31,,cart,{t3}
"""
SHOP = """\
kind: events
events:
  files: events.csv
  user: user
  item: item
  time: time
  action: action
  action_values: [view, cart, buy]
  item_category: category
tasks:
  - {name: buys, target_action: [buy]}
  - {name: engaged, target_action: [cart, buy]}
liked_actions: [cart, buy]
sequence: {length: 3}
split: {by: time, shares: [0.5, 0.25, 0.25]}
"""


def _write(folder, files: dict[str, str]):
    for name, text in files.items():
        (folder / name).write_text(text)
    return read_data_config(folder / "shop.yaml")


def _all_rows(splits) -> TabularData:
    parts = (splits.train, splits.validation, splits.test)
    return TabularData(
        features={k: np.concatenate([p.features[k] for p in parts]) for k in parts[0].features},
        labels={k: np.concatenate([p.labels[k] for p in parts]) for k in parts[0].labels},
        label_masks={k: np.concatenate([p.label_masks[k] for p in parts]) for k in parts[0].label_masks},
        spec=parts[0].spec,
    )


def test_an_event_log_makes_each_users_sequences_with_its_own_ids(tmp_path):
    events = EVENTS.format(t0=0, t1=DAY, t2=3 * DAY, t3=7 * DAY)
    config = _write(tmp_path, {"events.csv": events, "shop.yaml": SHOP})
    assert isinstance(config, EventsConfig) and config.name == "shop"
    splits = event_sequence_splits(config, split_seed=0)
    # Items in numeric order (31, 900, 12000 -> ids 1, 2, 3), actions in the config's order.
    np.testing.assert_array_equal(splits.vocabularies["item"], ["31", "900", "12000"])
    np.testing.assert_array_equal(splits.vocabularies["action"], ["view", "cart", "buy"])
    np.testing.assert_array_equal(splits.vocabularies["user"], ["alice", "bob"])
    np.testing.assert_array_equal(splits.vocabularies["genres"], ["books", "toys"])
    rows = _all_rows(splits)
    order = np.lexsort((rows.features["user_id"], rows.features["timestamp"]))
    # alice: 900 view (t0), 12000 view (t1), 12000 buy (t3 days), 31 cart (7 days); bob: 900 cart, 31 view.
    np.testing.assert_array_equal(rows.features["item"][order], [[0, 2, 3], [0, 2, 1], [2, 3, 3], [3, 3, 1]])
    mask = 4  # [MASK]: the number of actions + 1
    np.testing.assert_array_equal(
        rows.features["action"][order], [[0, 1, mask], [0, 2, mask], [1, 1, mask], [1, 3, mask]]
    )
    np.testing.assert_array_equal(rows.features["user_id"][order], [1, 2, 1, 1])
    np.testing.assert_array_equal(rows.labels["buys"][order], [0, 0, 1, 0])
    np.testing.assert_array_equal(rows.labels["engaged"][order], [0, 0, 1, 1])
    # Categories: item 31 has none, 900 books (1), 12000 toys (2).
    np.testing.assert_array_equal(rows.features["genres"][order][2, :, 0], [1, 2, 2])
    np.testing.assert_array_equal(rows.features["genres"][order][1, :, 0], [0, 1, 0])
    assert "title" not in rows.features
    # The liked-items bag holds the cart / buy history steps: bob's cart of 900; alice's buy of 12000.
    np.testing.assert_array_equal(rows.features["liked_history"][order], [[-1, -1], [2, -1], [-1, -1], [3, -1]])
    sizes = channel_sizes(rows)
    assert sizes == ChannelSizes(num_items=3, num_genres=2, title_dim=0, action_channel="action", num_actions=3)
    assert sorted(channel_columns(rows)) == ["action", "genres", "interval", "item"]
    assert sizes.category_channels == {"genres": 3, "action": 4} and sizes.dense_channels == {"interval": 1}
    assert bag_features(rows, sizes).shape == (4, 3 * 4 + 2 * 3)
    # Ordered by the target's time 50/25/25.
    assert [len(splits.train), len(splits.validation), len(splits.test)] == [2, 1, 1]
    assert splits.test.features["timestamp"][0] == 7 * DAY
    assert splits.split.startswith("shop: ordered by target time 50/25/25 of 4")
    only = event_sequence_splits(config, split_seed=0, tasks=["engaged"])
    assert only.train.spec.labels == ("engaged",)


def test_the_movielens_layout_through_files_equals_the_in_memory_build(tmp_path):
    # Ratings as actions "1".."5", genres and title vectors from an item table, gender
    # and age from a user table: the sequences `build_behaviour_sequences` makes from the
    # same events, with the action channel in place of `rating`.
    rng = np.random.default_rng(0)
    num_users, num_items, n = 12, 15, 200
    user = rng.integers(1, num_users + 1, n)
    item = rng.integers(1, num_items + 1, n)
    rating = rng.integers(1, 6, n)
    time = rng.integers(0, 50 * DAY, n)
    genres = np.zeros((num_items + 1, 2), np.int64)
    genres[1:, 0] = rng.integers(1, 5, num_items)
    genres[1::2, 1] = rng.integers(5, 7, len(genres[1::2]))
    titles = np.zeros((num_items + 1, 3), np.float32)
    titles[1:] = rng.normal(size=(num_items, 3)).round(3)
    female = np.r_[0, rng.integers(0, 2, num_users)]
    old = np.r_[0, rng.integers(0, 2, num_users)]
    described = np.r_[0, rng.random(num_users) < 0.7].astype(np.float32)  # users with a gender / age row
    expected, _ = build_behaviour_sequences(
        user_id=user,
        item_id=item,
        rating=rating,
        timestamp=time,
        item_genres=genres,
        item_titles=titles,
        user_female=female,
        user_over_34=old,
        length=4,
        attribute_masks={"female": described, "over_34": described},
    )
    events = "u,i,r,t\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in zip(user, item, rating, time))
    items = "item;genres;title\n" + "".join(
        f"{i};{'|'.join(str(g) for g in genres[i] if g)};{'|'.join(f'{v:g}' for v in titles[i])}\n"
        for i in rng.permutation(np.arange(1, num_items + 1))
    )
    users = "user,gender,age\n" + "".join(
        f"{u},{'F' if female[u] else 'M'},{40 if old[u] else 20}\n" for u in range(1, num_users + 1) if described[u]
    )
    config = _write(
        tmp_path,
        {
            "events.csv": events,
            "items.tsv": items.replace(";", "\t"),
            "users.csv": users,
            "shop.yaml": (
                "kind: events\n"
                "events: {files: events.csv, user: u, item: i, time: t, action: r, action_values: [1, 2, 3, 4, 5]}\n"
                "items: {files: items.tsv, format: tsv, id: item, categories: genres, vector: title}\n"
                "users: {files: users.csv, id: user}\n"
                "tasks:\n"
                "  - {name: like, target_action: [4, 5]}\n"
                "  - {name: female, user_column: gender, positive: F}\n"
                "  - {name: over_34, user_column: age, positive: [40]}\n"
                "liked_actions: [4, 5]\n"
                "sequence: {length: 4}\n"
            ),
        },
    )
    splits = event_sequence_splits(config, split_seed=0)
    for part, want in zip(
        (splits.train, splits.validation, splits.test), ordered_split(expected, expected.features["timestamp"])
    ):
        for name in ("item", "genres", "title", "interval", "user_id", "timestamp", "step_timestamp", "liked_history"):
            np.testing.assert_allclose(part.features[name], want.features[name], err_msg=name, rtol=1e-6)
        np.testing.assert_array_equal(part.features["action"], want.features["rating"])
        for task in ("like", "female", "over_34"):
            np.testing.assert_array_equal(part.labels[task], want.labels[task], err_msg=task)
            np.testing.assert_array_equal(part.label_masks[task], want.label_masks[task], err_msg=task)
        assert part.spec.labels == ("like", "female", "over_34")
    sizes = channel_sizes(splits.train)
    assert (sizes.num_genres, sizes.title_dim, sizes.num_actions) == (6, 3, 5)


def test_bad_rows_name_file_line_and_field_or_are_skipped_and_counted(tmp_path):
    events = EVENTS.format(t0=0, t1=DAY, t2="soon", t3=7 * DAY) + "carol,900,books,return,5\n,31,,view,6\n"
    config = _write(tmp_path, {"events.csv": events, "shop.yaml": SHOP})
    path = str(tmp_path / "events.csv")
    with pytest.raises(DataFormatError, match=rf"{path}:5: field 'time': expected integer seconds, found 'soon'"):
        event_sequence_splits(config, split_seed=0)
    kept = event_sequence_splits(config, split_seed=0, on_bad_row="skip")
    # The bad time, the unknown action `return` (line 8) and the empty user (line 9).
    assert kept.split.endswith("; 3 bad row(s) skipped (on_bad_row=skip)")
    assert len(_all_rows(kept)) == 3  # alice: 3 events left (2 examples), bob: 2 (1)
    (tmp_path / "events.csv").write_text(EVENTS.format(t0=0, t1=1, t2=2, t3=3) + "carol,900,books,return,5\n")
    with pytest.raises(DataFormatError, match=r":8: field 'action': action 'return' is not one of"):
        event_sequence_splits(config, split_seed=0)


def test_item_and_user_tables_refuse_repeated_ids_and_unreadable_vectors(tmp_path):
    events = EVENTS.format(t0=0, t1=DAY, t2=3 * DAY, t3=7 * DAY).replace(",toys,", ",,").replace(",books,", ",,")
    items = "item,vector\n31,0.5|1\n900,2|x\n31,1|1\n12000,1|2|3\n"
    config_text = (
        SHOP.replace("  item_category: category\n", "") + "items: {files: items.csv, id: item, vector: vector}\n"
    )
    config = _write(tmp_path, {"events.csv": events, "items.csv": items, "shop.yaml": config_text})
    items_path = str(tmp_path / "items.csv")
    with pytest.raises(DataFormatError, match=rf"{items_path}:3: field 'vector': expected 2 numbers joined by"):
        event_sequence_splits(config, split_seed=0)
    splits = event_sequence_splits(config, split_seed=0, on_bad_row="skip")
    rows = _all_rows(splits)
    assert splits.split.endswith(
        "; 3 bad row(s) skipped (on_bad_row=skip)"
    )  # 900's unreadable vector, 31's second row, 12000's three numbers
    items_seen = rows.features["item"].ravel()
    titles = rows.features["title"].reshape(len(items_seen), -1)
    np.testing.assert_allclose(titles[items_seen == 1][0], [0.5, 1.0])  # item 31: its first row
    assert not titles[items_seen == 2].any() and not titles[items_seen == 3].any()  # no readable row


@pytest.mark.parametrize(
    "change, key, message",
    [
        (("  action_values: [view, cart, buy]\n", ""), "events.action_values", "every action value"),
        (("[cart, buy]}", "[cart, refund]}"), "tasks[1].target_action", "not in action_values"),
        (
            ("  - {name: buys, target_action: [buy]}\n", "  - {name: buys, user_column: vip, positive: [y]}\n"),
            "tasks[0].user_column",
            "needs a `users` table",
        ),
        (("sequence: {length: 3}", "sequence: {length: 1}"), "sequence.length", "an integer >= 2"),
        (
            ("split: {by: time, shares: [0.5, 0.25, 0.25]}", "split: {by: user, folds: 3, fold: 3}"),
            "split.fold",
            "[0, 3)",
        ),
        (("liked_actions: [cart, buy]", "liked_actions: [like]"), "liked_actions", "not in action_values"),
        (("kind: events\n", "kind: events\nlabels: [x]\n"), "labels", "Accepted"),
        (("  time: time\n", ""), "events.time", "required"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, change, key, message):
    (tmp_path / "shop.yaml").write_text(SHOP.replace(*change))
    with pytest.raises(
        DataConfigError, match=rf"shop.yaml: `{key}`: .*{message}".replace("[", r"\[").replace(")", r"\)")
    ):
        read_data_config(tmp_path / "shop.yaml")


def test_user_folds_deal_every_user_to_one_fold(tmp_path):
    lines = ["user,item,action,time"]
    for user in range(30):
        lines += [f"u{user},{item},view,{user * 100 + item}" for item in range(1, 5)]
    config_text = SHOP.replace("  item_category: category\n", "").replace(
        "split: {by: time, shares: [0.5, 0.25, 0.25]}", "split: {by: user, folds: 3, fold: 1}"
    )
    config = _write(tmp_path, {"events.csv": "\n".join(lines) + "\n", "shop.yaml": config_text})
    splits = event_sequence_splits(config, split_seed=4)
    users = {part: set(getattr(splits, part).features["user_id"]) for part in ("train", "validation", "test")}
    assert len(users["test"]) == 10 and not users["test"] & (users["train"] | users["validation"])
    assert len(users["train"] | users["validation"] | users["test"]) == 30
    assert "3-fold cross-validation, fold 1" in splits.split and "seed 4" in splits.split
    assert "genres" not in splits.train.features


def test_ids_read_as_numbers_only_where_every_file_writes_them_plainly(tmp_path):
    # Plain integer ids are read as numbers (memory); "007" is another item than "7", so a
    # file that writes it keeps every file's ids as text, as if all were read as text.
    plain = "user,item,category,action,time\n1,7,,view,0\n1,31,,cart,86400\n2,7,,view,0\n2,31,,buy,86400\n"
    padded = "user,item,category,action,time\n3,007,,view,0\n3,31,,cart,86400\n"
    shop = SHOP.replace("files: events.csv", "files: events-*.csv").replace("{length: 3}", "{length: 2}")
    config = _write(tmp_path, {"events-1.csv": plain, "shop.yaml": shop})
    splits = event_sequence_splits(config, split_seed=0)
    np.testing.assert_array_equal(splits.vocabularies["item"], ["7", "31"])  # numeric order
    np.testing.assert_array_equal(splits.vocabularies["user"], ["1", "2"])
    config = _write(tmp_path, {"events-2.csv": padded, "shop.yaml": shop})
    splits = event_sequence_splits(config, split_seed=0)
    np.testing.assert_array_equal(splits.vocabularies["item"], ["007", "31", "7"])  # text: three items
    np.testing.assert_array_equal(splits.vocabularies["user"], ["1", "2", "3"])
