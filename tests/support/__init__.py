"""What the tests share, one copy each.

- ``api``: the ``Api`` test client and the fixed admin key;
- ``responses``: ``ok`` and the one error-shape assertion, ``assert_error``;
- ``money``: the reference arithmetic for amounts, written from the specification;
- ``together``: calls released at once by a barrier, for the race tests;
- ``market``: the market factory (keys, funds, GPUs, heartbeats) and moving the clock;
- ``gpus``: the registry's read shortcuts;
- ``store``: a service call in one write transaction on the store, outside a server."""
