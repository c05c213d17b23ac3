"""The miner agent (``aitbc miner run``): what runs on a GPU host, talking to a coordinator
through the miner protocol."""
