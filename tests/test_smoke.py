from conftest import Api


def test_register_and_list(api: Api) -> None:
    miner = api.key("miner", "miner-1")
    gpu_id = api.register_gpu(miner)
    listed = api.call("GET", "/v1/marketplace/gpu/list").json()
    assert [g["gpu_id"] for g in listed] == [gpu_id]
