"""retrain's decision: train or not, from the dataset and the board's versions (their cards' dataset id and count)."""

from __future__ import annotations

from desktop_trainer.data.samples import LocalDataset, Sample
from desktop_trainer.retrain import plan
from shared_schema import default_weld_schema


def dataset(count: int, dataset_id: str = "ds-board") -> LocalDataset:
    samples = tuple(Sample(f"s{i}", "good", None, None) for i in range(count))
    return LocalDataset(default_weld_schema(), samples, dataset_id, ("http://board",))


def version(sha: str, state: str, dataset_id: str | None, samples: int | None) -> dict:
    return {
        "sha256": sha * 64,
        "name": f"m-{sha}",
        "state": state,
        "card": {"dataset_id": dataset_id, "sample_count": samples},
    }


def test_growth_is_counted_from_the_newest_model_of_this_dataset() -> None:
    champion = version("a", "champion", "ds-board", 100)
    refused = version("b", "refused", "ds-board", 130)  # the same 130 samples already gave a refused model
    versions = [refused, champion, version("c", "retired", "ds-other", 900)]

    waiting = plan(dataset(170), champion, versions, min_new=50, force=False)
    assert not waiting.train
    assert waiting.reason.startswith("nothing to do: dataset ds-board has 170 labelled samples, +40 since the 130")
    assert "refused m-b (bbbbbbbbbbbb…)" in waiting.reason and "--min-new-labels 50" in waiting.reason

    grown = plan(dataset(180), champion, versions, min_new=50, force=False)
    assert grown.train and grown.reason == "180 labelled samples, 50 more than the refused m-b (bbbbbbbbbbbb…) had"
    assert plan(dataset(120), champion, versions, min_new=50, force=True).train


def test_first_model_other_dataset_and_cards_without_counts_train() -> None:
    assert plan(dataset(10), None, [], 50, False).reason.startswith("no champion on the board: training the first")
    other = version("a", "champion", "ds-magnetic", 1000)
    decision = plan(dataset(10), other, [other], 50, False)
    assert decision.train and "the champion came from dataset ds-magnetic" in decision.reason
    uncounted = version("d", "champion", "ds-board", None)
    decision = plan(dataset(10), uncounted, [uncounted], 50, False)
    assert decision.train and "no card names its sample count" in decision.reason
