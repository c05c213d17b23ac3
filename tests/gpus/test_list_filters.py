"""``GET /v1/marketplace/gpu/list``: a bare array, filters, sorting and pagination."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from unittest.mock import ANY

import pytest
from sqlalchemy import create_engine, text

from tests.support.api import Api
from tests.support.gpus import GPU_LIST, details, gpu_path, list_gpus, listed_ids
from tests.support.market import booked, deposit, heartbeat
from tests.support.responses import assert_error


@dataclass
class Fleet:
    ids: dict[str, str]

    def names(self, gpu_ids: list[str]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[i] for i in gpu_ids]


@pytest.fixture
def fleet(api: Api) -> Fleet:
    """Six GPUs, registered ten seconds apart (so ``newest`` has an order):

    name      model             memory  price  region    miner  status
    4090      RTX 4090          24      0.5    eu-west   m-a    available
    3090      RTX 3090          24      0.3    eu-west   m-a    available
    4090-8    RTX 4090          8       0.4    eu-west   m-a    available
    a100      A100 SXM4         80      2.0    us-east   m-b    available
    4090-pro  GeForce RTX-4090  48      1.5    us-east   m-b    available
    h100      H100              80      3.5    us-east   m-c    offline (silent 110 s)
    """
    keys = {m: api.key("miner", m) for m in ("m-a", "m-b", "m-c")}
    specs = [
        ("4090", "m-a", {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"}, "eu-west"),
        ("3090", "m-a", {"name": "RTX 3090", "memory_gb": 24, "price_per_hour": "0.3"}, "eu-west"),
        ("4090-8", "m-a", {"name": "RTX 4090", "memory_gb": 8, "price_per_hour": "0.4"}, "eu-west"),
        ("a100", "m-b", {"name": "A100 SXM4", "memory_gb": 80, "price_per_hour": "2"}, "us-east"),
        (
            "4090-pro",
            "m-b",
            {"name": "GeForce RTX-4090", "memory_gb": 48, "price_per_hour": "1.5"},
            "us-east",
        ),
        ("h100", "m-c", {"name": "H100", "memory_gb": 80, "price_per_hour": "3.5"}, "us-east"),
    ]
    ids = {}
    for name, miner, spec, region in specs:
        ids[name] = api.register_gpu(keys[miner], **spec, region=region)
        api.clock.advance(seconds=10)
    api.clock.advance(seconds=100)
    heartbeat(api, keys["m-a"])
    heartbeat(api, keys["m-b"])
    assert sorted(listed_ids(api, status="offline")) == [ids["h100"]]
    return Fleet(ids)


ALL = {"4090", "3090", "4090-8", "a100", "4090-pro", "h100"}


def _names(api: Api, fleet: Fleet, **params: object) -> set[str]:
    return set(fleet.names(listed_ids(api, **params)))


def test_list_is_a_bare_array_of_gpu_objects(api: Api, fleet: Fleet) -> None:
    response = api.call("GET", GPU_LIST)

    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    assert all(isinstance(g, dict) and "gpu_id" in g for g in body)
    assert {g["gpu_id"] for g in body} == set(fleet.ids.values())


def test_empty_registry_lists_an_empty_array(api: Api) -> None:
    response = api.call("GET", GPU_LIST)

    assert response.status_code == 200
    assert response.json() == []


def test_default_limit_is_20(api: Api) -> None:
    miner = api.key("miner", "m-1")
    for _ in range(21):
        api.register_gpu(miner)

    assert len(api.call("GET", GPU_LIST).json()) == 20


def test_available_excludes_offline_gpus(api: Api, fleet: Fleet) -> None:
    assert _names(api, fleet, available="true") == ALL - {"h100"}
    assert _names(api, fleet) == ALL


MODEL_PATTERNS = [
    ("4090", {"4090", "4090-8", "4090-pro"}),
    ("rtx4090", {"4090", "4090-8", "4090-pro"}),
    ("RTX 4090", {"4090", "4090-8", "4090-pro"}),
    ("rtx-4090", {"4090", "4090-8", "4090-pro"}),
    ("RTX", {"4090", "3090", "4090-8", "4090-pro"}),
    ("rtx*90", {"4090", "3090", "4090-8", "4090-pro"}),
    ("RTX 30*", {"3090"}),
    ("geforce*4090", {"4090-pro"}),
    ("a100", {"a100"}),
    ("sxm", {"a100"}),
    ("H*0", {"h100"}),
    ("*", ALL),
    ("5090", set()),
    ("%", set()),
    ("40%", set()),
]


@pytest.mark.parametrize(("model", "expected"), MODEL_PATTERNS)
def test_model_filter(api: Api, fleet: Fleet, model: str, expected: set[str]) -> None:
    assert _names(api, fleet, model=model) == expected


def test_model_filter_answers_the_same_from_the_process_copy_of_the_model_keys(
    api: Api, fleet: Fleet
) -> None:
    """The first model filter reads the registered keys; the rest match against that copy."""
    for _ in range(2):
        assert {m: _names(api, fleet, model=m) for m, _ in MODEL_PATTERNS} == dict(MODEL_PATTERNS)


def test_a_model_registered_after_the_process_read_the_keys_is_listed_at_once(
    api: Api,
) -> None:
    """Registering does not touch the list's copy of the model keys, so each GPU below is
    one this process's copy has never heard of, as if another process registered it."""
    miner = api.key("miner", "m-1")
    a100_40 = api.register_gpu(miner, name="A100 40GB", price_per_hour="2")
    assert listed_ids(api, model="a100") == [a100_40]  # the copy is read here

    # A key the copy lacks, for a pattern the copy does match: the copy is not taken as whole.
    a100_80 = api.register_gpu(miner, name="A100 80GB", price_per_hour="3")
    assert listed_ids(api, model="a100") == [a100_40, a100_80]
    assert listed_ids(api, model="a100*80") == [a100_80]
    # A pattern the copy matches nothing for.
    h100 = api.register_gpu(miner, name="H100", price_per_hour="4")
    assert listed_ids(api, model="h100") == [h100]
    assert listed_ids(api, model="100", sort="price") == [a100_40, a100_80, h100]


@pytest.mark.parametrize(
    ("memory_min", "expected"),
    [
        (0, ALL),
        (16, ALL - {"4090-8"}),
        (24, ALL - {"4090-8"}),
        (25, {"a100", "4090-pro", "h100"}),
        (80, {"a100", "h100"}),
        (81, set()),
    ],
)
def test_memory_min_filter(api: Api, fleet: Fleet, memory_min: int, expected: set[str]) -> None:
    assert _names(api, fleet, memory_min=memory_min) == expected


@pytest.mark.parametrize(
    ("price_max", "expected"),
    [
        ("0.5", {"3090", "4090-8", "4090"}),
        ("0.499999", {"3090", "4090-8"}),
        ("0.3", {"3090"}),
        ("0.29", set()),
        ("2", {"3090", "4090-8", "4090", "4090-pro", "a100"}),
        ("1000", ALL),
    ],
)
def test_price_max_filter(api: Api, fleet: Fleet, price_max: str, expected: set[str]) -> None:
    assert _names(api, fleet, price_max=price_max) == expected


@pytest.mark.parametrize("price", ["0.00005", "0.000015", "0.000001"])
def test_price_max_as_the_deployed_cli_writes_a_small_float(api: Api, price: str) -> None:
    """The deployed CLI sends ``str(float)``: below 0.0001 that is ``5e-05``."""
    miner = api.key("miner", "m-tiny")
    cheap = api.register_gpu(miner, price_per_hour=price)
    api.register_gpu(miner, price_per_hour="0.0001")
    listed = list_gpus(api, price_max=str(float(price)))
    assert [g["gpu_id"] for g in listed] == [cheap]


@pytest.mark.parametrize("written", ["1e-07", "1.25e-05", "1E-05", "1e-5", "5e+01", "1e05"])
def test_price_max_in_other_exponent_forms_is_422(api: Api, written: str) -> None:
    assert_error(api.call("GET", GPU_LIST, params={"price_max": written}), 422, "validation_error")


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("eu-west", {"4090", "3090", "4090-8"}),
        ("EU-West", {"4090", "3090", "4090-8"}),
        ("us-east", {"a100", "4090-pro", "h100"}),
        ("ap-south", set()),
    ],
)
def test_region_filter(api: Api, fleet: Fleet, region: str, expected: set[str]) -> None:
    assert _names(api, fleet, region=region) == expected


def test_status_filter(api: Api, fleet: Fleet) -> None:
    api.call("DELETE", gpu_path(fleet.ids["3090"]), api.key("miner", "m-a"))

    assert _names(api, fleet, status="available") == ALL - {"h100", "3090"}
    assert _names(api, fleet, status="offline") == {"h100"}
    assert _names(api, fleet, status="delisted") == {"3090"}
    assert _names(api, fleet, status="booked") == set()
    assert _names(api, fleet) == ALL - {"3090"}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"available": "true"},
        {"status": "available"},
        {"status": "booked"},
        {"status": "offline"},
        {"status": "delisted"},
        {"status": "delisted", "available": "true"},
        {"model": "4090", "available": "true", "sort": "rating"},
    ],
)
def test_each_listed_gpu_is_shown_as_its_details_show_it(
    api: Api, fleet: Fleet, params: dict[str, str]
) -> None:
    """A page leaves out what its filters already decide (a filter for available GPUs
    reads no booking or miner state for its columns): the GPUs it shows must not differ
    from their details for it. One GPU of each status: booked, offline, delisted."""
    deposit(api, "c-1", "100")
    booked(api, api.key("client", "c-1"), fleet.ids["4090"])
    api.call("DELETE", gpu_path(fleet.ids["3090"]), api.key("miner", "m-a"))
    shown = list_gpus(api, **params)
    assert shown
    for gpu in shown:  # the details add what the GPU costs now (tests/market)
        assert gpu | {"market": ANY} == details(api, gpu["gpu_id"])
    statuses = {gpu["status"] for gpu in shown}
    assert statuses <= ({params["status"]} if "status" in params else statuses)
    if "status" not in params and not params.get("available"):
        assert statuses == {"available", "booked", "offline"}


def test_filters_combine(api: Api, fleet: Fleet) -> None:
    found = _names(api, fleet, model="4090", memory_min=16, price_max="1", available="true")

    assert found == {"4090"}


def test_combined_filters_exclude_offline_gpus(api: Api, fleet: Fleet) -> None:
    assert _names(api, fleet, model="h100") == {"h100"}
    assert _names(api, fleet, model="h100", available="true") == set()


def test_sort_by_price_is_the_default_and_ascending(api: Api, fleet: Fleet) -> None:
    default = list_gpus(api)
    by_price = list_gpus(api, sort="price")

    assert default == by_price
    prices = [Decimal(g["price_per_hour"]) for g in by_price]
    assert prices == sorted(prices)
    assert fleet.names([g["gpu_id"] for g in by_price]) == [
        "3090",
        "4090-8",
        "4090",
        "4090-pro",
        "a100",
        "h100",
    ]


def test_sort_by_memory_puts_the_largest_first(api: Api, fleet: Fleet) -> None:
    gpus = list_gpus(api, sort="memory")

    memory = [g["memory_gb"] for g in gpus]
    assert memory == sorted(memory, reverse=True)
    assert fleet.names([g["gpu_id"] for g in gpus])[-1] == "4090-8"


def test_sort_by_newest_puts_the_latest_registration_first(api: Api, fleet: Fleet) -> None:
    gpus = list_gpus(api, sort="newest")

    assert fleet.names([g["gpu_id"] for g in gpus]) == [
        "h100",
        "4090-pro",
        "a100",
        "4090-8",
        "3090",
        "4090",
    ]


def test_sort_by_rating_puts_the_best_rated_first_and_unrated_last(
    api: Api, fleet: Fleet, database_url: str
) -> None:
    # Reviews arrive in a later slice; set the aggregates the registry keeps directly.
    ratings = {"a100": (9, 2), "3090": (5, 1), "4090": (12, 3)}  # 4.5, 5.0, 4.0
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for name, (rating_sum, count) in ratings.items():
                conn.execute(
                    text("UPDATE gpus SET rating_sum = :s, review_count = :c WHERE id = :id"),
                    {"s": rating_sum, "c": count, "id": fleet.ids[name]},
                )
    finally:
        engine.dispose()

    gpus = list_gpus(api, sort="rating")

    assert fleet.names([g["gpu_id"] for g in gpus])[:3] == ["3090", "a100", "4090"]
    assert [g["average_rating"] for g in gpus[:3]] == ["5.00", "4.50", "4.00"]
    assert [g["review_count"] for g in gpus[:3]] == [1, 2, 3]
    assert all(g["average_rating"] is None for g in gpus[3:])


def test_limit_and_offset_page_through_the_sorted_list(api: Api, fleet: Fleet) -> None:
    everything = listed_ids(api, sort="price")

    pages = [listed_ids(api, sort="price", limit=4, offset=o) for o in (0, 4, 8)]

    assert [len(p) for p in pages] == [4, 2, 0]
    assert pages[0] + pages[1] == everything
    assert listed_ids(api, limit=1) == everything[:1]
    assert listed_ids(api, limit=500) == everything


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", 0),
        ("limit", 501),
        ("limit", -1),
        ("limit", "ten"),
        ("offset", -1),
        ("memory_min", -1),
        ("memory_min", "lots"),
        ("price_max", "-0.5"),
        ("price_max", "0.1234567"),
        ("price_max", "free"),
        ("price_max", "NaN"),
        ("available", "perhaps"),
        ("status", "sleeping"),
        ("sort", "cheapest"),
        ("model", "x" * 129),
    ],
)
def test_invalid_query_parameters_are_422_naming_the_parameter(
    api: Api, param: str, value: object
) -> None:
    body = assert_error(api.call("GET", GPU_LIST, params={param: value}), 422, "validation_error")

    assert param in body["detail"]
